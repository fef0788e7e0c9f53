"""Checkpoints by Hub repo id through the Hugging Face cache (`roberta_core.hub`), with no network:
every test builds the cache layout huggingface_hub writes (`hub/models--org--name/blobs/<sha256>`,
`snapshots/<commit>/<file>` symlinks to the blobs, `refs/<branch>` holding the commit) in a
temporary `HF_HOME`, holding a tiny checkpoint and tokenizer saved by our own code, and loads from
it with `HF_HUB_OFFLINE=1`. Oracles: the arrays and files written into the cache."""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("huggingface_hub")

from roberta_core import backends, checkpoint, cli, hub, runtime  # noqa: E402
from roberta_core.auto_tokenizer import load_tokenizer  # noqa: E402
from roberta_core.config import RobertaConfig  # noqa: E402
from roberta_core.pretrained import push_pretrained_to_hub, save_pretrained_files  # noqa: E402
from roberta_core.tokenization import RobertaTokenizer  # noqa: E402
from roberta_core.tokenization_fast import RobertaTokenizerFast  # noqa: E402
from tests.helpers import random_state, tiny_config  # noqa: E402
from tests.roberta_core.test_tokenization import tiny_files  # noqa: E402

REPO = "tiny-org/tiny-roberta"
COMMIT = "1" * 40
OTHER = "2" * 40


def cache_repo(hf_home: Path, repo_id: str, commit: str, files: dict[str, bytes], refs=("main",)) -> Path:
    """Write `files` (path in the repo -> bytes) as huggingface_hub's cache does: content-addressed
    blobs, a snapshot folder of relative symlinks for `commit`, and `refs/<ref>` naming it."""
    repo = hf_home / "hub" / ("models--" + repo_id.replace("/", "--"))
    (repo / "blobs").mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        link = repo / "snapshots" / commit / name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    for ref in refs:
        (repo / "refs").mkdir(exist_ok=True)
        (repo / "refs" / ref).write_text(commit)
    return repo / "snapshots" / commit


def folder_files(folder: Path, prefix: str = "") -> dict[str, bytes]:
    return {prefix + p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.fixture
def hf_home(tmp_path, monkeypatch):
    """An empty HF_HOME, offline: nothing here may reach the network."""
    home = tmp_path / "hf_home"
    home.mkdir()
    for name in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_TOKEN", "TRANSFORMERS_OFFLINE", *hub.LEGACY_CACHE_VARIABLES):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    return home


@pytest.fixture
def saved(tmp_path):
    """A tiny masked-LM checkpoint and a byte-level tokenizer, written by our code: (folder, config, state)."""
    words = tmp_path / "words"
    words.mkdir()
    tiny_files(words)
    config = tiny_config(vocab_size=len(RobertaTokenizerFast.from_pretrained(words)))
    state = random_state(config, "masked_lm", seed=3)
    folder = tmp_path / "saved"
    save_pretrained_files(folder, config, state, "masked_lm")
    RobertaTokenizerFast.from_pretrained(words).save_pretrained(folder)
    return folder, RobertaConfig.from_json_file(folder / "config.json"), state


@pytest.fixture
def cached(hf_home, saved):
    """`saved` in the cache as REPO: `main` at COMMIT; `v2` at OTHER, whose config has layer_norm_eps=1e-7;
    and a copy of the checkpoint in the subfolder `sub/` of COMMIT."""
    folder, config, state = saved
    files = folder_files(folder)
    cache_repo(hf_home, REPO, COMMIT, {**files, **folder_files(folder, "sub/")})
    other = dict(files)
    other["config.json"] = json.dumps({**json.loads(files["config.json"]), "layer_norm_eps": 1e-7}).encode()
    cache_repo(hf_home, REPO, OTHER, other, refs=("v2",))
    return config, state


def installed_backends():
    return [pytest.param(b, marks=pytest.mark.skipif(not runtime.available(b), reason=f"{b} not installed"))
            for b in backends.NAMES]


# ---------------------------------------------------------------------------- config and tokenizers


def test_config_loads_by_repo_id_revision_and_subfolder_offline(cached):
    config, _ = cached
    assert RobertaConfig.from_pretrained(REPO) == config
    assert RobertaConfig.from_pretrained(REPO, revision=COMMIT) == config
    assert RobertaConfig.from_pretrained(REPO, revision="main", subfolder="sub") == config
    assert config.layer_norm_eps != 1e-7
    assert RobertaConfig.from_pretrained(REPO, revision="v2").layer_norm_eps == 1e-7  # a ref to the other commit
    assert RobertaConfig.from_pretrained(REPO, revision=OTHER, num_labels=4).num_labels == 4  # overrides still apply
    # As v4: the commit of the snapshot read (v4's pipelines pass it on); no name (a model's
    # from_pretrained names its config).
    for options, commit in (({}, COMMIT), ({"revision": "v2"}, OTHER), ({"subfolder": "sub"}, COMMIT)):
        by_name = RobertaConfig.from_pretrained(REPO, **options)
        assert (by_name.name_or_path, by_name._commit_hash) == ("", commit)
        # v4's to_dict carries `_name_or_path` (peft's adapter card reads it), never `_commit_hash`;
        # what config.json gets (to_diff_dict) has neither
        by_name.name_or_path = REPO
        assert by_name.to_dict()["_name_or_path"] == REPO and "_commit_hash" not in by_name.to_dict()
        assert not {"_commit_hash", "_name_or_path"} & set(json.loads(by_name.to_json_string()))
    assert (config.name_or_path, config._commit_hash) == ("", None)
    # huggingface_hub's own cache scanner reads the layout built here as a valid cache.
    import huggingface_hub

    (repo,) = huggingface_hub.scan_cache_dir(Path(os.environ["HF_HOME"]) / "hub").repos
    assert repo.repo_id == REPO and {r.commit_hash: set(r.refs) for r in repo.revisions} == {COMMIT: {"main"}, OTHER: {"v2"}}


def test_a_preset_name_is_a_hub_id_not_half_a_preset(hf_home, saved):
    # v4: "roberta-base" names a Hub repo; the preset of that name is RobertaConfig.from_preset's only.
    with pytest.raises(FileNotFoundError, match="roberta-base") as error:
        RobertaConfig.from_pretrained("roberta-base")
    assert str(hf_home / "hub") in str(error.value)
    folder, config, _ = saved
    cache_repo(hf_home, "roberta-base", COMMIT, folder_files(folder))
    assert RobertaConfig.from_pretrained("roberta-base") == config != RobertaConfig.from_preset("roberta-base")


@pytest.mark.parametrize("cls", [RobertaTokenizer, RobertaTokenizerFast])
def test_tokenizers_load_by_repo_id_offline(cached, saved, cls):
    folder = saved[0]
    local, by_name = cls.from_pretrained(folder), cls.from_pretrained(REPO, revision="main")
    vocab = json.loads((folder / "vocab.json").read_text())
    assert by_name.tokenize("hello world") == local.tokenize("hello world") == ["hel", "l", "o", "Ġw", "o", "r", "l", "d"]
    assert by_name("hello")["input_ids"] == [0, vocab["hel"], vocab["l"], vocab["o"], 2]
    assert by_name.name_or_path == REPO
    assert load_tokenizer(REPO, subfolder="sub").get_vocab() == vocab | {
        t: i for t, i in local.get_vocab().items() if t not in vocab}


# ---------------------------------------------------------------------------- models


@pytest.mark.parametrize("backend", installed_backends())
def test_models_load_by_repo_id_offline_in_every_backend(cached, backend):
    config, state = cached
    convert = importlib.import_module(f"roberta_{backend}.convert")
    for options in ({}, {"revision": COMMIT}, {"revision": "main", "subfolder": "sub"}):
        model = runtime.load_model(backend, "masked_lm", REPO, **options)
        got = convert.to_canonical(model)
        for key, array in state.items():
            np.testing.assert_array_equal(np.asarray(got[key]), array, err_msg=f"{backend} {options} {key}")
        assert (model.name_or_path, model.config.name_or_path, model.config._commit_hash) == (REPO, REPO, COMMIT)
    # as v4: the model's config is named by the repo id also when a config is given (object or repo id)
    for given in (RobertaConfig.from_pretrained(REPO), REPO):
        model = runtime.load_model(backend, "masked_lm", REPO, config=given)
        assert (model.name_or_path, model.config.name_or_path) == (REPO, REPO)
    with pytest.raises(FileNotFoundError, match="no-such-org/no-such-model"):
        runtime.load_model(backend, "masked_lm", "no-such-org/no-such-model")


@pytest.mark.parametrize("backend", installed_backends())
def test_a_causal_lm_by_repo_id_takes_the_repos_generation_config(hf_home, tmp_path, backend):
    """As v4, a causal LM loaded by repo id reads generation_config.json from the snapshot (fetched
    with the weights), and one without it gets the config's token ids."""
    config = tiny_config(is_decoder=True)
    folder = tmp_path / "clm"
    save_pretrained_files(folder, config, random_state(config, "causal_lm", seed=1), "causal_lm")
    (folder / "generation_config.json").write_text(json.dumps({"max_new_tokens": 3, "eos_token_id": 2}))
    cache_repo(hf_home, "org/clm", COMMIT, folder_files(folder))
    model = runtime.load_model(backend, "causal_lm", "org/clm")
    assert (model.generation_config.max_new_tokens, model.generation_config.eos_token_id) == (3, 2)
    (folder / "generation_config.json").unlink()
    cache_repo(hf_home, "org/clm2", OTHER, folder_files(folder))
    assert runtime.load_model(backend, "causal_lm", "org/clm2").generation_config.max_new_tokens is None


def test_a_causal_lms_generation_config_is_fetched_with_its_weights(monkeypatch, tmp_path):
    from roberta_core.pretrained import resolve_pretrained

    config = tiny_config(is_decoder=True)
    folder = save_pretrained_files(tmp_path / "clm", config, random_state(config, "causal_lm", seed=1), "causal_lm")
    (folder / "generation_config.json").write_text("{}")
    asked, _ = serve_online(monkeypatch, folder_files(folder))
    resolve_pretrained(REPO, {"cache_dir": tmp_path / "cache"}, generation=True)
    assert asked == ["config.json", "model.safetensors", "generation_config.json"]
    asked.clear()
    resolve_pretrained(REPO, {"cache_dir": tmp_path / "cache"})  # another head: not asked for
    assert asked == ["config.json", "model.safetensors"]


@pytest.mark.parametrize("backend", installed_backends())
def test_a_repo_without_config_json_loads_with_config_given(hf_home, saved, backend):
    # v4: from_pretrained(repo, config=config) reads only the weights; without config= the
    # missing config.json is the error, naming it.
    folder, config, state = saved
    files = {k: v for k, v in folder_files(folder).items() if k != "config.json"}
    cache_repo(hf_home, "tiny-org/weights-only", COMMIT, files)
    package = importlib.import_module(f"roberta_{backend}")
    cls = getattr(package, {"pt": "", "tf": "TF", "flax": "Flax"}[backend] + "RobertaForMaskedLM")
    model = cls.from_pretrained("tiny-org/weights-only", config=config)
    got = importlib.import_module(f"roberta_{backend}.convert").to_canonical(model)
    for key, array in state.items():
        np.testing.assert_array_equal(np.asarray(got[key]), array, err_msg=f"{backend} {key}")
    with pytest.raises(FileNotFoundError, match="config.json"):
        cls.from_pretrained("tiny-org/weights-only")


def test_a_repo_not_in_the_cache_offline_is_one_clear_error(hf_home):
    for load in (
        lambda: RobertaConfig.from_pretrained("FacebookAI/roberta-base", revision="v1.0"),
        lambda: hub.resolve_pretrained("FacebookAI/roberta-base", {"revision": "v1.0"}),
        lambda: RobertaTokenizerFast.from_pretrained("FacebookAI/roberta-base", revision="v1.0"),
        lambda: load_tokenizer("FacebookAI/roberta-base", revision="v1.0"),
    ):
        with pytest.raises(FileNotFoundError) as error:
            load()
        message = str(error.value)
        assert "'FacebookAI/roberta-base'" in message and "revision 'v1.0'" in message, message
        assert str(hf_home / "hub") in message and "HF_HUB_OFFLINE" in message, message


def test_a_cached_repo_without_weights_names_what_it_looked_for(hf_home, saved):
    cache_repo(hf_home, REPO, COMMIT, {"config.json": (saved[0] / "config.json").read_bytes()})
    with pytest.raises(FileNotFoundError, match=r"model\.safetensors, model\.safetensors\.index\.json, pytorch_model\.bin"):
        hub.resolve_pretrained(REPO)
    assert hub.resolve_pretrained(REPO, need=("config",)) == hf_home / "hub" / f"models--{REPO.replace('/', '--')}" / "snapshots" / COMMIT


def test_sharded_checkpoint_comes_with_its_shards(hf_home, tmp_path):
    config = tiny_config()
    state = random_state(config, "model", seed=5)
    folder = save_pretrained_files(tmp_path / "sharded", config, state, "model", max_shard_size=20_000)
    files = folder_files(folder)
    assert "model.safetensors.index.json" in files and sum(n.endswith(".safetensors") for n in files) > 1
    cache_repo(hf_home, REPO, COMMIT, files)
    loaded = checkpoint.load_state_dict(hub.resolve_pretrained(REPO))
    assert set(loaded) == set(state)
    for key in state:
        np.testing.assert_array_equal(loaded[key], state[key])
    # A shard missing from the cache: the clear offline error names it.
    index = json.loads(files["model.safetensors.index.json"])
    shard = sorted(set(index["weight_map"].values()))[-1]
    cache_repo(hf_home, "tiny-org/partial", COMMIT, {k: v for k, v in files.items() if k != shard})
    with pytest.raises(FileNotFoundError, match=shard):
        hub.resolve_pretrained("tiny-org/partial")


@pytest.mark.parametrize("fmt", ["bin", "h5", "msgpack"])
def test_v4s_other_sharded_formats_come_with_their_shards(hf_home, tmp_path, fmt):
    """pytorch_model.bin.index.json, tf_model.h5.index.json, flax_model.msgpack.index.json by repo
    id: the index and every shard it names are fetched, and load as the state saved."""
    config = tiny_config()
    state = random_state(config, "masked_lm", seed=5)
    folder = save_pretrained_files(tmp_path / "sharded", config, state, "masked_lm", format=fmt, max_shard_size=20_000)
    files = folder_files(folder)
    index = {"bin": "pytorch_model.bin.index.json", "h5": "tf_model.h5.index.json", "msgpack": "flax_model.msgpack.index.json"}[fmt]
    assert index in files and len(files) > 3
    cache_repo(hf_home, REPO, COMMIT, files)
    loaded = checkpoint.load_state_dict(hub.resolve_pretrained(REPO, prefer=fmt))
    assert set(loaded) == set(state)
    for key in state:
        np.testing.assert_array_equal(loaded[key], state[key])


def test_a_variant_by_repo_id_fetches_the_variant_files_only(monkeypatch, tmp_path, saved):
    """v4's `variant="fp16"` by repo id: model.fp16.safetensors (or its index and shards) is fetched,
    never the plain file; a repo without the variant is an OSError naming the variant files."""
    from roberta_core.pretrained import resolve_pretrained

    folder = saved[0]
    files = folder_files(folder)
    asked, _ = serve_online(monkeypatch, {**files, "model.fp16.safetensors": files["model.safetensors"]})
    options = {"cache_dir": tmp_path / "cache", "variant": "fp16"}
    resolve_pretrained(REPO, options)
    assert asked == ["config.json", "model.fp16.safetensors"]
    asked.clear()
    with pytest.raises(OSError, match="has no pytorch_model.bin"):  # use_safetensors=False: safetensors is never read
        resolve_pretrained(REPO, {"cache_dir": tmp_path / "cache", "use_safetensors": False})
    assert asked == ["config.json", "pytorch_model.bin", "pytorch_model.bin.index.json", "tf_model.h5",
                     "tf_model.h5.index.json", "flax_model.msgpack", "flax_model.msgpack.index.json"]
    asked.clear()
    with pytest.raises(OSError, match=r"model\.bf16\.safetensors, model\.safetensors\.index\.bf16\.json, pytorch_model\.bf16\.bin"):
        resolve_pretrained(REPO, {"cache_dir": tmp_path / "cache", "variant": "bf16"})


def test_a_hostile_index_from_the_hub_is_refused_before_any_shard_is_asked_for(monkeypatch, tmp_path, saved):
    folder = saved[0]
    for bad in ("../../evil.bin", "/etc/passwd", "sub/pytorch_model-00001-of-00001.bin", ".."):
        index = json.dumps({"weight_map": {"roberta.embeddings.word_embeddings.weight": bad}}).encode()
        asked, _ = serve_online(monkeypatch, {"config.json": (folder / "config.json").read_bytes(),
                                              "pytorch_model.bin.index.json": index})
        with pytest.raises(ValueError, match="is not a file name in the same folder"):
            hub.resolve_pretrained(REPO, {"cache_dir": tmp_path / "cache"}, prefer="bin")
        assert asked == ["config.json", "pytorch_model.bin", "pytorch_model.bin.index.json"]


def serve_online(monkeypatch, repo_files: dict[str, bytes]) -> tuple[list, list]:
    """Go online through a fake `hf_hub_download` that serves `repo_files` (any repo id):
    returns (the file names asked for, (repo_id, subfolder, revision, token, local_files_only) of each call)."""
    import huggingface_hub

    asked, seen = [], []

    def fake_download(repo_id, filename, *, subfolder=None, cache_dir=None, **kwargs):
        asked.append(filename)
        seen.append((repo_id, subfolder, kwargs["revision"], kwargs["token"], kwargs["local_files_only"]))
        if filename not in repo_files:
            raise huggingface_hub.errors.EntryNotFoundError(f"{filename} not in {repo_id}")
        path = Path(cache_dir) / "snap" / filename
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(repo_files[filename])
        return str(path)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    return asked, seen


def test_only_the_files_needed_are_fetched_preferred_weights_first(monkeypatch, tmp_path, saved):
    """Online, through a fake `hf_hub_download` serving a repo that holds every format: a
    backend fetches config.json and its preferred weights file only; a tokenizer only its files."""
    folder = saved[0]
    asked, seen = serve_online(monkeypatch, {**folder_files(folder), "tf_model.h5": b"h5", "flax_model.msgpack": b"msgpack"})
    options = {"cache_dir": tmp_path / "cache"}
    hub.resolve_pretrained(REPO, options, prefer="h5")
    assert asked == ["config.json", "tf_model.h5"]
    asked.clear()
    hub.resolve_pretrained(REPO, options)
    assert asked == ["config.json", "model.safetensors"]
    asked.clear()
    hub.resolve_pretrained(REPO, options, need=("tokenizer",))
    assert set(asked) == set(hub.TOKENIZER_FILES)
    # The Hub keywords reach huggingface_hub as they are (v4's use_auth_token is token).
    seen.clear()
    hub.resolve_pretrained(REPO, {**options, "revision": "v2", "use_auth_token": "hf_x", "subfolder": "sub"})
    assert set(seen) == {(REPO, "sub", "v2", "hf_x", False)}


# ---------------------------------------------------------------------------- names that are not repo ids


def test_paths_and_bad_names_are_refused_clearly(tmp_path, hf_home):
    with pytest.raises(FileNotFoundError, match="no such checkpoint directory"):
        hub.resolve_pretrained(tmp_path / "missing" / "ckpt")
    with pytest.raises(FileNotFoundError, match="nor a Hub repo id"):
        hub.resolve_pretrained("a/b/c")
    with pytest.raises(ValueError, match="subfolder must be a relative path"):
        hub.resolve_pretrained(REPO, {"subfolder": "../up"})
    assert hub.resolve_pretrained(tmp_path, {"subfolder": "x"}) == tmp_path / "x"
    assert [hub.is_hub_id(n) for n in ("roberta-base", "FacebookAI/roberta-base", "a--b", "/abs", "a/b/c", "")] == [
        True, True, False, False, False, False]


def test_cache_and_offline_follow_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HUGGINGFACE_HUB_CACHE", raising=False)
    assert hub.cache_folder() == tmp_path / "home" / "hub"
    for name in hub.LEGACY_CACHE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert hub.cache_folder() == tmp_path / "home" / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
    assert hub.cache_folder() == tmp_path / "cache" and hub.cache_folder(tmp_path / "x") == tmp_path / "x"
    # v4's older variables come first, in v4's order (transformers/utils/hub.py of 4.57.6).
    monkeypatch.setenv("PYTORCH_PRETRAINED_BERT_CACHE", str(tmp_path / "bert"))
    assert hub.cache_folder() == tmp_path / "bert"
    monkeypatch.setenv("TRANSFORMERS_CACHE", str(tmp_path / "transformers"))
    assert hub.cache_folder() == tmp_path / "transformers" and hub.cache_folder(tmp_path / "x") == tmp_path / "x"
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    assert not hub.offline() and hub.offline(local_files_only=True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert hub.offline()


# ---------------------------------------------------------------------------- the command


def test_roberta_info_and_tokenize_by_repo_id_offline(cached, capsys):
    config, state = cached
    assert cli.main(["info", REPO, "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["config"]["num_hidden_layers"] == config.num_hidden_layers
    assert summary["parameters"] == sum(a.size for a in state.values())
    assert summary["tokenizer"] is not None
    assert cli.main(["tokenize", REPO, "hello"]) == 0
    assert "hel" in capsys.readouterr().out


def test_roberta_info_by_repo_id_in_a_fresh_process(cached, hf_home):
    """The environment as a user sets it, read by a new process (not this one's huggingface_hub)."""
    env = {**os.environ, "HF_HOME": str(hf_home), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-m", "roberta_core.cli", "info", REPO, "--json"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["parameters"] == sum(a.size for a in cached[1].values())
    done = subprocess.run([sys.executable, "-m", "roberta_core.cli", "info", "tiny-org/absent"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "tiny-org/absent" in done.stderr and str(hf_home / "hub") in done.stderr


def test_roberta_convert_from_a_repo_id_keeps_weights_and_tokenizer(cached, saved, tmp_path, capsys):
    _, state = cached
    assert cli.main(["convert", REPO, str(tmp_path / "out"), "--to", "bin", "--no-verify"]) == 0
    out = tmp_path / "out"
    loaded = checkpoint.load_state_dict(out / "pytorch_model.bin")
    for key in state:
        np.testing.assert_array_equal(loaded[key], state[key])
    for name in ("tokenizer.json", "vocab.json", "merges.txt"):  # real files, not links into the cache
        assert not (out / name).is_symlink() and (out / name).read_bytes() == (saved[0] / name).read_bytes()


def test_local_files_only_and_cache_dir_without_the_environment(cached, hf_home, monkeypatch, tmp_path):
    import huggingface_hub.constants

    config, _ = cached
    monkeypatch.setenv("HF_HOME", str(tmp_path / "elsewhere"))
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    assert RobertaConfig.from_pretrained(REPO, cache_dir=hf_home / "hub", local_files_only=True) == config
    with pytest.raises(FileNotFoundError, match="local_files_only") as error:
        RobertaConfig.from_pretrained(REPO, local_files_only=True)  # HF_HOME now names an empty cache
    assert str(tmp_path / "elsewhere" / "hub") in str(error.value)


@pytest.mark.skipif(not runtime.available("pt"), reason="pt not installed")
def test_roberta_fill_mask_and_parity_by_repo_id_offline(cached, capsys):
    assert cli.main(["fill-mask", REPO, "hel<mask>", "--backend", "pt", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["masks"]) == 1
    assert cli.main(["parity", REPO, "--backends", "pt"]) == 0
    assert "masked_lm" in capsys.readouterr().out


# ---------------------------------------------------------------------------- upload (a fake HfApi: no network here)


class FakeApi:
    calls: list = []

    def __init__(self, token=None):
        self.token = token

    def create_repo(self, repo_id, **kwargs):
        FakeApi.calls.append(("create_repo", repo_id, kwargs))

    def upload_folder(self, *, repo_id, folder_path, **kwargs):
        files = sorted(p.name for p in Path(folder_path).iterdir())
        FakeApi.calls.append(("upload_folder", repo_id, files, kwargs))
        return "commit-info"


def test_save_pretrained_push_to_hub_uploads_the_saved_folder(monkeypatch, tmp_path):
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    FakeApi.calls = []
    config = tiny_config()
    state = random_state(config, "masked_lm")
    save_pretrained_files(tmp_path / "out", config, state, "masked_lm", push_to_hub=True, repo_id="me/tiny",
                          token="hf_secret", private=True)
    (create, repo, create_kwargs), (upload, repo2, files, upload_kwargs) = FakeApi.calls
    assert (create, repo, repo2, upload) == ("create_repo", "me/tiny", "me/tiny", "upload_folder")
    assert create_kwargs["private"] is True and create_kwargs["exist_ok"] is True
    assert files == ["config.json", "model.safetensors"] and upload_kwargs["token"] == "hf_secret"
    # No token anywhere: refused, naming the ways to give one; nothing uploaded.
    FakeApi.calls = []
    with pytest.raises(ValueError, match="needs a Hugging Face token.*HF_TOKEN"):
        save_pretrained_files(tmp_path / "out2", config, state, "masked_lm", push_to_hub=True)
    assert FakeApi.calls == []
    monkeypatch.setenv("HF_TOKEN", "hf_env")
    assert hub.push_to_hub(tmp_path / "out", "me/tiny") == "commit-info"
    assert FakeApi.calls[-1][3]["token"] == "hf_env"
    with pytest.raises(ValueError, match="repo_id must be a Hub repo id"):
        hub.push_to_hub(tmp_path / "out", "a/b/c")
    with pytest.raises(ValueError, match="only apply with push_to_hub=True"):
        save_pretrained_files(tmp_path / "out3", config, state, "masked_lm", repo_id="me/x")


def test_tokenizer_save_pretrained_push_to_hub(monkeypatch, tmp_path, saved):
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    FakeApi.calls = []
    RobertaTokenizerFast.from_pretrained(saved[0]).save_pretrained(
        tmp_path / "tok", push_to_hub=True, repo_id="me/tok", token="hf_secret")
    (_, repo, _), (_, repo2, files, kwargs) = FakeApi.calls
    assert repo == repo2 == "me/tok" and kwargs["token"] == "hf_secret"
    assert {"tokenizer.json", "vocab.json", "merges.txt", "tokenizer_config.json"} <= set(files)
    with pytest.raises(TypeError, match="repo_id"):
        RobertaTokenizerFast.from_pretrained(saved[0]).save_pretrained(tmp_path / "tok2", repo_id="me/tok")


def test_an_unreachable_hub_with_nothing_cached_says_so(monkeypatch, tmp_path):
    """Online but without a connection (huggingface_hub then reads the cache alone and raises
    LocalEntryNotFoundError): the error says the Hub could not be reached, not that the file is absent."""
    import huggingface_hub

    def no_connection(repo_id, filename, **_):
        raise huggingface_hub.errors.LocalEntryNotFoundError("connection error and not in the cache")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", no_connection)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    with pytest.raises(FileNotFoundError, match="could not be reached") as error:
        hub.resolve_pretrained(REPO, {"cache_dir": tmp_path / "c"})
    assert str(tmp_path / "c") in str(error.value) and "revision 'main'" in str(error.value)


def test_push_pretrained_to_hub_saves_into_a_temporary_folder_and_uploads_it(monkeypatch, tmp_path):
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    FakeApi.calls = []
    config = tiny_config()
    state = random_state(config, "model")
    folders = []

    def save(folder):
        folders.append(folder)
        save_pretrained_files(folder, config, state, "model")

    assert push_pretrained_to_hub(save, "me/tiny", token="hf_secret", commit_message="first") == "commit-info"
    (_, _, files, kwargs) = FakeApi.calls[-1]
    assert files == ["config.json", "model.safetensors"] and kwargs["commit_message"] == "first"
    assert not folders[0].exists()  # the temporary folder is gone
    # Without a token, or with a bad repo id, nothing is saved.
    with pytest.raises(ValueError, match="needs a Hugging Face token"):
        push_pretrained_to_hub(save, "me/tiny")
    with pytest.raises(ValueError, match="repo_id must be a Hub repo id"):
        push_pretrained_to_hub(save, "me/tiny/x", token="t")
    assert len(folders) == 1


@pytest.mark.parametrize("backend", ["pt", "tf", "flax"])
def test_models_push_to_hub_and_save_pretrained_push_to_hub(monkeypatch, tmp_path, backend):
    """v4's `model.push_to_hub(repo_id)` and `model.save_pretrained(d, push_to_hub=True)` in every
    backend: the saved files are what is uploaded (checked through a fake HfApi: no network here),
    save_pretrained's keywords reach the save and the Hub's the upload."""
    import huggingface_hub

    from roberta_core import runtime

    if not runtime.available(backend):
        pytest.skip(f"the {backend} backend is not installed")
    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    config = tiny_config()
    source = tmp_path / "source"
    save_pretrained_files(source, config, random_state(config, "masked_lm"), "masked_lm")
    model = runtime.load_model(backend, "masked_lm", source)
    native = {"pt": "pytorch_model.bin", "tf": "tf_model.h5", "flax": "flax_model.msgpack"}[backend]

    FakeApi.calls = []
    assert model.push_to_hub("me/tiny", token="hf_secret", private=True, safe_serialization=False) == "commit-info"
    (_, repo, create_kwargs), (_, repo2, files, upload_kwargs) = FakeApi.calls
    assert repo == repo2 == "me/tiny" and create_kwargs["private"] is True and upload_kwargs["token"] == "hf_secret"
    assert files == sorted(["config.json", native])

    FakeApi.calls = []
    model.save_pretrained(tmp_path / "saved", push_to_hub=True, repo_id="me/tiny2", token="hf_secret")
    (_, repo, _), (_, _, files, _) = FakeApi.calls
    default = {"pt": "model.safetensors", "tf": "tf_model.h5", "flax": "flax_model.msgpack"}[backend]  # v4's defaults
    assert repo == "me/tiny2" and files == sorted(["config.json", default])
    assert sorted(p.name for p in (tmp_path / "saved").iterdir()) == files
    with pytest.raises(ValueError, match="needs a Hugging Face token"):
        model.push_to_hub("me/tiny")


def test_what_a_backend_adds_to_the_folder_is_uploaded_too(monkeypatch, tmp_path):
    """TF's `save_pretrained(saved_model=True, push_to_hub=True)` adds its SavedModel through
    `then=`, which runs before the upload: the extra files are in the commit."""
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    FakeApi.calls = []
    config = tiny_config()
    save_pretrained_files(tmp_path / "out", config, random_state(config, "masked_lm"), "masked_lm", push_to_hub=True,
                          repo_id="me/tiny", token="hf_secret", then=lambda d: (d / "saved_model").mkdir())
    assert FakeApi.calls[-1][2] == ["config.json", "model.safetensors", "saved_model"]


def test_the_hub_fetches_the_sentencepiece_model(monkeypatch, tmp_path):
    """A repo with only sentencepiece.bpe.model (+ settings) serves a tokenizer; the file is fetched."""
    asked, _ = serve_online(monkeypatch, {"sentencepiece.bpe.model": b"sp", "tokenizer_config.json": b"{}"})
    folder = hub.resolve_pretrained("org/xlmr-like", {"cache_dir": tmp_path / "cache"}, need=("tokenizer",))
    assert "sentencepiece.bpe.model" in asked
    assert (folder / "sentencepiece.bpe.model").read_bytes() == b"sp"
