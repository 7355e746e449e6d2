"""Datasets: node-classification graphs (Planetoid, PyG benchmarks, OGB), OGB graph sets,
triangle meshes with segmentation labels (RNA, human bodies, any folder), and synthetic data.

Real data is found under a ``root`` (for tests and demos: ``$TGMA_DATA``, copied into a
private folder with :func:`copy_dataset`); PyG/OGB download what is absent when a network
is available.
"""

from tg_metricattn.datasets.csbm import contextual_sbm, edge_homophily
from tg_metricattn.datasets.data_root import DATA_ENV_VAR, DataNotFoundError, copy_dataset, family_root, get_data_root
from tg_metricattn.datasets.human_segmentation import HumanSegmentation
from tg_metricattn.datasets.mesh_dataset import MeshItem, MeshSegmentationDataset
from tg_metricattn.datasets.mesh_features import (
    heat_kernel_signature,
    mesh_feature_width,
    mesh_features,
    normalize_positions,
)
from tg_metricattn.datasets.mesh_folder import MeshFolder
from tg_metricattn.datasets.mesh_io import MeshFormatError, read_labels, read_mesh, read_off
from tg_metricattn.datasets.mesh_sample import (
    DEFAULT_EIGENPAIRS,
    IGNORE_INDEX,
    face_to_vertex_labels,
    mesh_edge_index,
    mesh_to_data,
)
from tg_metricattn.datasets.mesh_transforms import RandomRotation, random_rotation_matrix
from tg_metricattn.datasets.node_datasets import (
    NodeDatasetInfo,
    known_node_datasets,
    load_node_dataset,
    node_dataset_folder,
)
from tg_metricattn.datasets.ogb_datasets import GraphDatasetInfo, load_graph_dataset
from tg_metricattn.datasets.rna_segmentation import RNASegmentation
from tg_metricattn.datasets.safe_load import UnsafeFileError, open_dataset_safely, pyg_safe_load
from tg_metricattn.datasets.splits import random_per_class_split
from tg_metricattn.datasets.synthetic_meshes import PART_NAMES, SyntheticMeshSegmentation, make_figure
from tg_metricattn.geometry import mesh_eigenpairs

__all__ = [
    "DATA_ENV_VAR",
    "DEFAULT_EIGENPAIRS",
    "IGNORE_INDEX",
    "PART_NAMES",
    "DataNotFoundError",
    "GraphDatasetInfo",
    "HumanSegmentation",
    "MeshFolder",
    "MeshFormatError",
    "MeshItem",
    "MeshSegmentationDataset",
    "NodeDatasetInfo",
    "RNASegmentation",
    "RandomRotation",
    "SyntheticMeshSegmentation",
    "UnsafeFileError",
    "contextual_sbm",
    "copy_dataset",
    "edge_homophily",
    "face_to_vertex_labels",
    "family_root",
    "get_data_root",
    "heat_kernel_signature",
    "known_node_datasets",
    "load_graph_dataset",
    "load_node_dataset",
    "make_figure",
    "mesh_edge_index",
    "mesh_eigenpairs",
    "mesh_feature_width",
    "mesh_features",
    "mesh_to_data",
    "node_dataset_folder",
    "normalize_positions",
    "open_dataset_safely",
    "pyg_safe_load",
    "random_per_class_split",
    "random_rotation_matrix",
    "read_labels",
    "read_mesh",
    "read_off",
]
