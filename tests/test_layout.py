"""expected_tensors() against the independent key tool (../shared/tools/keys.py) for every
packaged config and for synthetic variants no shipped config uses."""

from __future__ import annotations

import copy
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import SHARED_DATA

from pocket_tts.checkpoint.layout import (
    Consumer,
    expected_tensors,
    parameter_count,
    tensor_table,
)
from pocket_tts.checkpoint.storage import StorageClass
from pocket_tts.config import load_config
from pocket_tts.testing import CONFIG_DIR

KEYS_TOOL = SHARED_DATA.parent / "tools" / "keys.py"
CONFIGS = sorted(CONFIG_DIR.glob("*.yaml"))
_LINE = re.compile(r"^(\S+) \[([0-9, ]*)\]$")


def keys_tool(yaml_path: Path) -> dict[str, tuple[int, ...]]:
    """Run keys.py --keys on a config and parse its ``key [shape]`` lines."""
    if not KEYS_TOOL.exists():
        pytest.fail(f"missing {KEYS_TOOL}")
    out = subprocess.run(
        [sys.executable, str(KEYS_TOOL), str(yaml_path), "--keys"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    keys = {}
    for line in out.splitlines():
        m = _LINE.match(line)
        if m:
            keys[m.group(1)] = tuple(int(v) for v in m.group(2).split(",") if v.strip())
    assert keys, out
    return keys


def test_configs_are_all_there():
    assert len(CONFIGS) >= 27


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_matches_keys_tool(path):
    ours = expected_tensors(load_config(path))
    theirs = keys_tool(path)
    assert set(ours) - set(theirs) == set()
    assert set(theirs) - set(ours) == set()
    assert ours == theirs


def _variant(tmp_path: Path, base: str, edit) -> Path:
    cfg = yaml.safe_load((CONFIG_DIR / f"{base}.yaml").read_text(encoding="utf-8"))
    cfg = copy.deepcopy(cfg)
    edit(cfg)
    path = tmp_path / f"{base}-variant.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def _flow_matching(c):
    c["flow_lm"]["flow"]["type"] = "flow_matching"


def _lsd_default_and_full_lut(c):
    c["flow_lm"]["flow"].pop("type", None)
    c["flow_lm"]["lookup_table"].pop("rank", None)
    c["flow_lm"].pop("z_dim", None)


def _projections(c):
    t = c["mimi"]["transformer"]
    t["d_model"] = 256
    t["num_heads"] = 4
    t["output_dimensions"] = [512, 256, 128]


def _no_bos_gqa(c):
    c["flow_lm"]["insert_bos_before_voice"] = False
    c["flow_lm"]["transformer"].update(attn_dim=512, num_kv_heads=4, dim_feedforward=300)


def _two_residuals_no_resample(c):
    c["mimi"]["seanet"]["n_residual_layers"] = 2
    c["mimi"]["frame_rate"] = 200.0  # the SEANet rate: no downsample/upsample modules
    c["mimi"].pop("inner_dim", None)
    c["mimi"].pop("outer_dim", None)


def _inner_dim_none(c):
    c["mimi"].pop("inner_dim", None)
    c["mimi"].pop("outer_dim", None)


@pytest.mark.parametrize(
    ("base", "edit"),
    [
        ("english_2026-10", _flow_matching),
        ("english_2m_2026-10", _lsd_default_and_full_lut),
        ("english_2026-10", _projections),
        ("english_7m_2026-10", _no_bos_gqa),
        ("english_2026-10", _two_residuals_no_resample),
        ("english_18m_2026-10", _inner_dim_none),
    ],
)
def test_variants_match_keys_tool(tmp_path, base, edit):
    path = _variant(tmp_path, base, edit)
    assert expected_tensors(load_config(path)) == keys_tool(path)


def test_variant_details(tmp_path):
    fm = expected_tensors(load_config(_variant(tmp_path, "english_2026-10", _flow_matching)))
    assert "flow_lm.flow_net.time_embed.0.freqs" in fm
    assert not any(k.startswith("flow_lm.flow_net.time_embed.1.") for k in fm)
    proj = expected_tensors(load_config(_variant(tmp_path, "english_2026-10", _projections)))
    assert proj["mimi.encoder_transformer.input_proj.weight"] == (256, 512)
    assert proj["mimi.encoder_transformer.output_projs.0.weight"] == (512, 256)
    assert "mimi.encoder_transformer.output_projs.1.weight" not in proj
    assert proj["mimi.encoder_transformer.output_projs.2.weight"] == (128, 256)


def test_known_shapes_and_totals():
    sd = expected_tensors(load_config("english_2026-10"))
    assert len(sd) == 214
    assert sd["flow_lm.conditioner.embed.weight"] == (4001, 1024)
    assert sd["flow_lm.speaker_proj_weight"] == (1024, 32)
    assert sd["mimi.upsample.convtr.convtr.weight"] == (512, 1, 32)
    assert list(sd)[:3] == [
        "flow_lm.bos_emb",
        "flow_lm.bos_before_voice",
        "flow_lm.speaker_proj_weight",
    ]
    cfg = load_config("english_2026-10")
    assert parameter_count(cfg) == 109_501_890
    two_m = load_config("english_2m_2026-10")
    assert parameter_count(two_m, "flow_lm.") == 881_201
    sd2 = expected_tensors(two_m)
    assert sd2["flow_lm.transformer.layers.0.self_attn.in_proj.weight"] == (320, 112)
    assert sd2["flow_lm.conditioner.proj.weight"] == (112, 32)
    assert sd2["flow_lm.z_proj.weight"] == (64, 112)
    old = expected_tensors(load_config("english_2026-01"))
    assert "flow_lm.bos_before_voice" not in old
    assert old["flow_lm.speaker_proj_weight"] == (1024, 512)
    assert old["mimi.downsample.conv.conv.weight"] == (512, 512, 32)


def test_bad_configs_raise(tmp_path):
    def bad_flow(c):
        c["flow_lm"]["flow"]["type"] = "diffusion"

    with pytest.raises(ValueError, match="Unknown flow type"):
        expected_tensors(load_config(_variant(tmp_path, "english_2026-10", bad_flow)))

    def bad_heads(c):
        c["flow_lm"]["transformer"]["num_kv_heads"] = 3

    with pytest.raises(ValueError, match="num_kv_heads"):
        expected_tensors(load_config(_variant(tmp_path, "english_2026-10", bad_heads)))


# ------------------------------------------------------------------------------ the tensor table

_LM_MATRIX_SUFFIXES = (
    ".self_attn.in_proj.weight",
    ".self_attn.out_proj.weight",
    ".linear1.weight",
    ".linear2.weight",
)


def _expected_storage(key: str, shape: tuple[int, ...]) -> StorageClass:
    """The storage class of a key, from its name and shape alone (the policy as documented)."""
    if key.startswith("flow_lm.transformer.layers.") and key.endswith(_LM_MATRIX_SUFFIXES):
        return StorageClass.LM_MATRIX
    if key.startswith("flow_lm.flow_net.") and key.endswith(".weight") and ".in_ln." not in key:
        return StorageClass.HEAD_MATRIX
    if (
        key.startswith(("mimi.encoder_transformer.", "mimi.decoder_transformer."))
        and ".transformer.layers." in key
        and key.endswith(_LM_MATRIX_SUFFIXES)
    ):
        return StorageClass.CODEC_MATRIX
    if key == "flow_lm.conditioner.embed.weight":
        return StorageClass.EMBEDDING_TABLE
    seanet = key.startswith(("mimi.encoder.model.", "mimi.decoder.model.", "mimi.downsample."))
    if seanet and key.endswith(".weight"):
        c_out = shape[1] if ".convtr." in key else shape[0]
        if math.prod(shape) >= 1 << 18 and c_out > 1:
            return StorageClass.CODEC_CONV
    return StorageClass.FLOAT32


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_table_entries(path):
    """Every key of the config appears exactly once, with its shape, the storage class the
    policy gives it, and a consumer of its own (stage by key prefix, one index per array on
    the field's path)."""
    cfg = load_config(path)
    table = tensor_table(cfg)
    keys = [e.key for e in table]
    assert len(keys) == len(set(keys))
    assert {e.key: e.shape for e in table} == keys_tool(path)  # order: see test_weights
    consumers = [e.consumer for e in table]
    assert len(consumers) == len(set(consumers))
    for e in table:
        assert e.consumer.stage == e.key.split(".", 1)[0], e.key
        assert e.consumer.field and e.consumer.field.count("[]") == len(e.consumer.indexes), e
        assert all(isinstance(i, int) and i >= 0 for i in e.consumer.indexes), e
        assert e.storage is _expected_storage(e.key, e.shape), e.key


def test_consumer_names_the_kernel_field():
    table = {e.key: e for e in tensor_table(load_config("english_2026-10"))}
    c = table["flow_lm.transformer.layers.3.self_attn.in_proj.weight"].consumer
    assert c == Consumer("flow_lm", "layers[].in_proj", (3,))
    assert str(c) == "flow_lm: layers[3].in_proj"
    c = table["mimi.decoder.model.6.block.3.conv.bias"].consumer
    assert str(c) == "mimi: dec.seanet.res[1][0].conv2.b"
    c = table["flow_lm.flow_net.res_blocks.2.adaLN_modulation.1.weight"].consumer
    assert str(c) == "flow_lm: head.blocks[2].ada_w"
    assert str(table["mimi.downsample.conv.conv.weight"].consumer) == "mimi: enc.down.w"
    assert str(table["mimi.encoder.model.9.conv.weight"].consumer) == "mimi: enc.seanet.down[2].w"


def test_storage_class_dtypes():
    """The storage of each class for each model dtype: per-frame flow-LM matrices in the model
    dtype (an int8 model keeps an fp16 head), the codec's large weights and the table float16
    in every compact model, and float32 tensors float32."""
    dtypes = ["float32", "float16", "bfloat16", "int8"]
    table = {
        StorageClass.FLOAT32: ["float32"] * 4,
        StorageClass.LM_MATRIX: dtypes,
        StorageClass.HEAD_MATRIX: ["float32", "float16", "bfloat16", "float16"],
        StorageClass.CODEC_MATRIX: ["float32"] + ["float16"] * 3,
        StorageClass.EMBEDDING_TABLE: ["float32"] + ["float16"] * 3,
        StorageClass.CODEC_CONV: ["float32"] + ["float16"] * 3,
    }
    assert set(table) == set(StorageClass)
    for storage, want in table.items():
        assert [storage.dtype(d) for d in dtypes] == want, storage
    with pytest.raises(ValueError, match="unknown weight dtype 'float64'"):
        StorageClass.LM_MATRIX.dtype("float64")
