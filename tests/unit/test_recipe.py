from pathlib import Path

import pytest

from edgewrite.errors import EdgewriteError
from edgewrite.recipe import Recipe, apply_overrides, load_recipe

RECIPES = sorted(
    p for p in Path(__file__).parents[2].joinpath("recipes").glob("*.yaml") if ".accelerate." not in p.name
)


def test_there_are_recipes() -> None:
    names = {p.name for p in RECIPES}
    assert {"quickstart.yaml", "writing-smollm2-135m.yaml", "writing-alpaca-7b.yaml"} <= names


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.name)
def test_every_recipe_loads_and_opens_with_a_comment(path: Path) -> None:
    recipe = load_recipe(path)
    assert recipe.name == path.stem
    first = path.read_text().splitlines()[0]
    assert first.startswith("#"), "each recipe opens with a comment: purpose, command, time and memory"


def test_paper_recipe_matches_the_paper() -> None:
    r = load_recipe(Path("recipes/writing-alpaca-7b.yaml"))
    assert (r.train.method, r.train.lr, r.train.epochs, r.train.max_length) == ("full", 2e-5, 3, 512)
    assert r.train.batch_size * r.train.grad_accum * 8 == 128
    assert r.data.prompt_style == "alpaca"


def test_unknown_key_is_rejected(tmp_path: Path) -> None:
    p = tmp_path / "r.yaml"
    p.write_text("name: x\ntrain:\n  lerning_rate: 1\n")
    with pytest.raises(EdgewriteError, match=r"train\.lerning_rate: unknown key"):
        load_recipe(p)


def test_wrong_type_is_rejected(tmp_path: Path) -> None:
    p = tmp_path / "r.yaml"
    p.write_text("name: x\ntrain:\n  batch_size: many\n")
    with pytest.raises(EdgewriteError, match=r"train\.batch_size"):
        load_recipe(p)


def test_unknown_task_is_rejected(tmp_path: Path) -> None:
    p = tmp_path / "r.yaml"
    p.write_text("name: x\ndata:\n  tasks: [grammar, poetry]\n")
    with pytest.raises(EdgewriteError, match="poetry"):
        load_recipe(p)


def test_set_overrides_nested_and_dict_keys() -> None:
    raw = apply_overrides({"name": "x"}, ["train.lr=1e-4", "data.task_weights.grammar=2", "train.bf16=off"])
    r = Recipe.model_validate(raw)
    assert r.train.lr == 1e-4 and r.data.task_weights == {"grammar": 2} and r.train.bf16 is False


@pytest.mark.parametrize("bad", ["train.nope=1", "nothing=1", "train.lr.deeper=1", "train.lr"])
def test_set_on_a_key_that_does_not_exist(bad: str) -> None:
    with pytest.raises(EdgewriteError, match="--set"):
        apply_overrides({"name": "x"}, [bad])


def test_missing_recipe_file() -> None:
    with pytest.raises(EdgewriteError, match="does not exist"):
        load_recipe(Path("no/such/recipe.yaml"))


def test_the_shipped_recipe_still_trains_what_shipped() -> None:
    """Defaults may change (LoRA dropout went to 0); the recipe that made the shipped adapter must still
    ask for the settings it was trained with, key for key, or rebuilding it would make another model."""
    import json

    root = Path(__file__).parents[2]
    manifest = json.loads((root / "edgewrite" / "shipped" / "writing" / "manifest.json").read_text())
    recipe = load_recipe(root / manifest["recipe"]["path"])
    assert recipe.train.model_dump() == manifest["train"]


def test_lora_dropout_defaults_to_zero_and_pinned_recipes_keep_theirs() -> None:
    assert Recipe.model_validate({"name": "x"}).train.lora_dropout == 0.0
    assert load_recipe(Path("experiments/recipe_search_base.yaml")).train.lora_dropout == 0.05


def test_the_data_folder_is_edgewrite_data_then_shared_data(monkeypatch, tmp_path: Path) -> None:
    from edgewrite.data import build_dataset
    from edgewrite.recipe import DataConfig

    monkeypatch.setenv("EDGEWRITE_DATA", str(tmp_path / "mine"))
    assert DataConfig().data_dir == str(tmp_path / "mine")
    with pytest.raises(EdgewriteError, match="does not exist; set EDGEWRITE_DATA to a folder"):
        build_dataset(DataConfig(), tmp_path / "out")  # one line saying where to put it, not an empty run
    assert not (tmp_path / "out").exists()
    monkeypatch.delenv("EDGEWRITE_DATA")
    assert DataConfig().data_dir == "../shared/data"
