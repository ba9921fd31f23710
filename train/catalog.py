"""The model registry's facts as plain data: name, description, recipe, parameters and MACs.

Importable without TensorFlow or Keras, so ``cifar-edge train --list-models`` and the CLI's help
answer at once on any install. :mod:`cifar_edge.train.models` maps each name to its Keras builder; the tests
build every model and check the parameter and MAC counts recorded here.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CatalogEntry:
    """One registered model as the user sees it before anything is built."""

    name: str
    description: str
    params: int  # for 32x32x3 inputs and 10 classes
    macs: int  # multiply-accumulates per image, same shape
    recipe: str = "classic"  # key of train.recipes.RECIPES
    int8_friendly: bool = True  # only layers that quantize to int8 TFLite builtins XNNPACK delegates


CATALOG: dict[str, CatalogEntry] = {
    entry.name: entry
    for entry in (
        CatalogEntry("default", "airbench94-shaped net (frozen 2x2 whitening, 64/256/256, ReLU, BN-before-pool), "
                     "airbench recipe", 1_973_920, 118_147_360, recipe="airbench"),
        CatalogEntry("airbench95", "airbench95-shaped net (widths 128/384/384), airbench recipe: 2.6x the default's "
                     "MACs; higher real-photo figures in one fine-tuned run, within the photos' noise (docs/open-world.md)",
                     4_608_288, 301_560_864, recipe="airbench"),
        CatalogEntry("airbench93", "airbench93-shaped net (widths 64/128/128), airbench recipe",
                     570_272, 54_223_904, recipe="airbench"),
        CatalogEntry("airbench93-gelu", "airbench93 with GELU, as in the paper (GELU is not delegated to XNNPACK "
                     "in int8): for comparison", 570_272, 54_223_904, recipe="airbench", int8_friendly=False),
        CatalogEntry("resnet9", "ResNet-9 (Myrtle.ai/DAWNBench) at base width 24, global max pool "
                     "(the previous default: see the changelog)", 928_690, 53_749_632),
        CatalogEntry("resnet8", "MLPerf-Tiny ResNet-8 (16/32/64 filters, ~78k parameters)", 78_426, 12_501_632),
        CatalogEntry("seed-cnn", "Keras-tutorial CNN: two 3x3 convs (32), max pool, dense 512, MaxNorm(3), dropout",
                     4_210_090, 14_521_344),
        CatalogEntry("ann", "dense baseline: flatten, dense 3000, dense 1000", 12_230_010, 12_226_000),
    )
}


def model_names() -> list[str]:
    """Names of the registered models, in registry order."""
    return list(CATALOG)


def recipe_of(name: str) -> str:
    """The training recipe registered for model ``name`` (``classic`` for unknown names)."""
    entry = CATALOG.get(name)
    return entry.recipe if entry else "classic"


def catalog_rows() -> list[dict]:
    """``{"name", "description", "params", "macs"}`` for every registered model (32x32x3, 10 classes)."""
    return [{"name": e.name, "description": e.description, "params": e.params, "macs": e.macs} for e in CATALOG.values()]
