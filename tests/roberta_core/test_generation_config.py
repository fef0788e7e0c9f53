"""`roberta_core.GenerationConfig` as v4 4.57.6's: every field with v4's default, `update`,
`from_dict`, JSON text and files (only the fields not at v4's defaults are written), `validate`'s
hard checks, and `from_pretrained(..., config_file_name=)`. Expected values: v4 4.57.6's, recorded."""

from __future__ import annotations

import json

import pytest

from roberta_core import GenerationConfig, RobertaConfig


def test_every_v4_field_has_v4s_default():
    g = GenerationConfig()
    # v4 4.57.6: GenerationConfig() attributes (a sample of the fields our generate() does not read)
    assert (g.min_length, g.typical_p, g.no_repeat_ngram_size, g.num_return_sequences) == (0, 1.0, 0, 1)
    assert (g.use_cache, g.length_penalty, g.early_stopping, g.output_logits) == (True, 1.0, False, None)
    assert (g.output_attentions, g.output_hidden_states, g.bad_words_ids, g.stop_strings) == (False, False, None, None)
    assert (g.num_assistant_tokens, g.num_assistant_tokens_schedule, g.cache_implementation) == (20, "constant", None)
    assert g.to_diff_dict() == {}  # v4: {"transformers_version": ...} only


def test_update_from_dict_and_json(tmp_path):
    g = GenerationConfig()
    assert g.update(max_new_tokens=5, foo=1) == {"foo": 1} and g.max_new_tokens == 5  # v4: the unused ones
    assert GenerationConfig.from_dict({"max_new_tokens": 4}).max_new_tokens == 4
    config, unused = GenerationConfig.from_dict({"max_new_tokens": 4}, top_k=3, bar=2, return_unused_kwargs=True)
    assert (config.top_k, unused) == (3, {"bar": 2})
    assert json.loads(GenerationConfig(max_new_tokens=4).to_json_string()) == {"max_new_tokens": 4}
    assert len(json.loads(GenerationConfig().to_json_string(use_diff=False))) == 65 + 1  # v4's 67 less its version
    GenerationConfig(max_new_tokens=7, do_sample=True, top_k=3).save_pretrained(tmp_path)
    assert json.loads((tmp_path / "generation_config.json").read_text()) == {"do_sample": True, "max_new_tokens": 7,
                                                                            "top_k": 3}
    GenerationConfig(max_new_tokens=9).save_pretrained(tmp_path, config_file_name="gen.json")
    assert GenerationConfig.from_pretrained(tmp_path, config_file_name="gen.json").max_new_tokens == 9
    assert GenerationConfig.from_pretrained(tmp_path, top_k=4).top_k == 4
    assert GenerationConfig.from_pretrained(tmp_path / "gen.json").max_new_tokens == 9
    model = GenerationConfig.from_model_config(RobertaConfig(is_decoder=True))
    assert model.to_diff_dict() == {"_from_model_config": True, "bos_token_id": 0, "eos_token_id": 2, "pad_token_id": 1}


def test_validate_refuses_what_v4_refuses():
    with pytest.raises(ValueError, match="`max_new_tokens` must be greater than 0, but is 0"):
        GenerationConfig(max_new_tokens=0)  # v4 4.57.6: the same message, at construction
    g = GenerationConfig(max_new_tokens=3)
    with pytest.raises(ValueError, match="max_new_tokens"):
        g.update(max_new_tokens=-1)
    assert g.max_new_tokens == 3  # a refused update leaves the config as it was
    GenerationConfig(temperature=-1.0).validate()  # v4 only logs this one (it is ignored without sampling)
