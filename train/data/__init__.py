"""CIFAR-10 and image-folder data: locating, downloading, decoding, caching, splitting."""

from .dataset import ImageSet, SkippedFile
from .sources import DATA_ENV, DataSource, load_split, resolve_source
from .splits import stratified_indices, train_val_split

__all__ = [
    "DATA_ENV",
    "DataSource",
    "ImageSet",
    "SkippedFile",
    "load_split",
    "resolve_source",
    "stratified_indices",
    "train_val_split",
]
