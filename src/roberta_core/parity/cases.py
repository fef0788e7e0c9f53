"""The built-in conformance cases: a table of data, read by `roberta_core.parity.suite`.

Each row is a plain dict. Every case runs on the `tiny` preset with dropout off (vocab 100,
hidden 32, 2 layers, 4 heads, intermediate 37, 66 positions: 64 tokens with absolute positions,
66 with relative ones) plus the row's `config` overrides. Random weights and inputs come from
`seed`. Keys (all optional but `name` and `head`):

    name        unique id (pytest id, table row)
    head        a key of roberta_core.weights.HEADS
    config      RobertaConfig overrides
    lengths     real length of each row (of each choice for multiple choice, row-major), padded
                to `pad_to` (default: the longest) with pad_token_id         default (7, 5, 2)
    padding     'right' | 'left'                                              default 'right'
    choices     number of choices C (multiple choice: len(lengths) == B * C)
    mask        pass attention_mask (False: none at all, the fast path)       default True
    embeds      pass inputs_embeds (B, T, H) instead of input_ids
    token_types pass random token_type_ids below type_vocab_size
    positions   pass explicit position_ids
    head_mask   'shared' (num_heads,) or 'per_layer' (num_layers, num_heads)
    encoder     real lengths of the encoder rows: cross-attention inputs (B, S, H) + mask
    labels      'tokens' | 'tokens_ignored' (all -100) | 'classes' | 'regression' |
                'multi_label' | 'choices' | 'spans' | 'spans_ignored' (all past the end)
    attentions  output_attentions=True
    hidden      output_hidden_states=True
    use_cache   pass use_cache explicitly
    chunks      decode in chunks of these sizes, feeding past_key_values back (use_cache=True);
                the concatenated logits and the last cache are compared with ONE full forward
    checks      which comparisons run: 'fp32' (vs reference and pairwise), 'bf16', 'grad'
    seed        weights and inputs                                            default 0

The family's other members are rows with `config={"model_type": ...}`: XLM-R and CamemBERT are
RoBERTa's architecture (their rows check that the model_type reaches every backend and changes
nothing); RoBERTa-PreLayerNorm moves the LayerNorms (`config.pre_layer_norm`) and has its own rows
for every head and every path the LayerNorm placement touches (padding, cache, cross-attention,
relative positions, gradients).
"""

from __future__ import annotations

ALL = ("fp32", "bf16", "grad")
GRAD = ("fp32", "grad")
BF16 = ("fp32", "bf16")
DECODER = {"is_decoder": True}
CROSS = {"is_decoder": True, "add_cross_attention": True}
XLMR = {"model_type": "xlm-roberta"}
CAMEMBERT = {"model_type": "camembert"}
PRELN = {"model_type": "roberta-prelayernorm"}

CASES: tuple[dict, ...] = (
    # --- the encoder: inputs, masks, positions
    dict(name="model_padded", head="model", attentions=True, hidden=True, checks=ALL),
    dict(name="model_no_padding", head="model", lengths=(7, 7, 7), mask=False),
    dict(name="model_all_ones_mask", head="model", lengths=(7, 7, 7), seed=1),
    dict(name="model_single_token", head="model", lengths=(1, 1, 1), seed=2),
    dict(name="model_max_length", head="model", lengths=(64, 33, 2), seed=3),
    dict(name="model_left_padding", head="model", lengths=(7, 4, 1), padding="left", attentions=True, seed=4),
    dict(name="model_fully_padded_row", head="model", lengths=(7, 3, 0), attentions=True, hidden=True, seed=5),
    dict(name="model_inputs_embeds", head="model", embeds=True, hidden=True, seed=6),
    dict(name="model_position_ids", head="model", positions=True, seed=7),
    dict(name="model_token_types_1row", head="model", token_types=True, seed=8),
    dict(name="model_token_types_2rows", head="model", config={"type_vocab_size": 2}, token_types=True, seed=9),
    dict(name="model_head_mask_shared", head="model", head_mask="shared", attentions=True, seed=10),
    dict(name="model_head_mask_per_layer", head="model", head_mask="per_layer", attentions=True, hidden=True, seed=11),
    dict(name="model_relative_key", head="model", config={"position_embedding_type": "relative_key"},
         attentions=True, hidden=True, seed=12),
    dict(name="model_relative_key_query", head="model", config={"position_embedding_type": "relative_key_query"},
         attentions=True, seed=13, checks=ALL),
    dict(name="model_relative_max_length", head="model", config={"position_embedding_type": "relative_key_query"},
         lengths=(66, 20, 3), seed=14),
    dict(name="model_dropout_configured_eval", head="model",
         config={"hidden_dropout_prob": 0.3, "attention_probs_dropout_prob": 0.3}, seed=15),
    # --- every activation the config accepts (one layer suffices)
    *(
        dict(name=f"act_{act}", head="model", config={"hidden_act": act, "num_hidden_layers": 1}, seed=16)
        for act in (
            "gelu", "gelu_python", "gelu_new", "gelu_pytorch_tanh", "gelu_fast", "gelu_accurate", "quick_gelu",
            "gelu_10", "relu", "relu2", "relu6", "leaky_relu", "silu", "swish", "mish", "tanh", "sigmoid",
            "linear", "laplace",
        )
    ),
    # --- decoder: causal mask, cache, cross-attention
    dict(name="causal_lm_loss", head="causal_lm", config=DECODER, labels="tokens", attentions=True, hidden=True,
         seed=20, checks=BF16),
    dict(name="causal_lm_loss_ignored", head="causal_lm", config=DECODER, labels="tokens_ignored", seed=21),
    dict(name="causal_lm_cache_full", head="causal_lm", config=DECODER, use_cache=True, seed=22),
    dict(name="causal_lm_incremental", head="causal_lm", config=DECODER, lengths=(7, 7, 7), mask=False,
         chunks=(4, 1, 2), seed=23),
    dict(name="causal_lm_incremental_padded", head="causal_lm", config=DECODER, chunks=(4, 1, 2), seed=24),
    dict(name="causal_lm_incremental_relative", head="causal_lm",
         config={**DECODER, "position_embedding_type": "relative_key_query"}, chunks=(4, 1, 2), seed=25),
    dict(name="causal_lm_cross_attention", head="causal_lm", config=CROSS, encoder=(4, 3, 1), labels="tokens",
         attentions=True, seed=26, checks=GRAD),
    # Cross-attention always uses absolute positions (v4 builds it with position_embedding_type='absolute').
    dict(name="causal_lm_cross_attention_relative", head="causal_lm",
         config={**CROSS, "position_embedding_type": "relative_key_query"}, encoder=(4, 3, 1), attentions=True, seed=29),
    dict(name="causal_lm_cross_incremental", head="causal_lm", config=CROSS, encoder=(4, 2, 3), chunks=(4, 1, 2), seed=27),
    dict(name="model_decoder_cross_attention", head="model", config=CROSS, encoder=(4, 2, 3), use_cache=True,
         attentions=True, hidden=True, seed=28),
    # --- masked LM
    dict(name="masked_lm", head="masked_lm", labels="tokens", attentions=True, hidden=True, seed=30, checks=ALL),
    dict(name="masked_lm_all_ignored", head="masked_lm", labels="tokens_ignored", seed=31),
    dict(name="masked_lm_untied", head="masked_lm", config={"tie_word_embeddings": False}, labels="tokens", seed=32, checks=GRAD),
    # --- sequence classification, every problem type
    dict(name="seq_cls_single_label", head="sequence_classification", config={"num_labels": 3}, labels="classes",
         attentions=True, hidden=True, seed=40, checks=ALL),
    dict(name="seq_cls_single_label_explicit", head="sequence_classification",
         config={"num_labels": 3, "problem_type": "single_label_classification"}, labels="classes", seed=41),
    dict(name="seq_cls_regression_1", head="sequence_classification", config={"num_labels": 1}, labels="regression",
         seed=42),
    dict(name="seq_cls_regression_3", head="sequence_classification",
         config={"num_labels": 3, "problem_type": "regression"}, labels="regression", seed=43),
    dict(name="seq_cls_multi_label", head="sequence_classification", config={"num_labels": 3}, labels="multi_label",
         seed=44),
    dict(name="seq_cls_multi_label_explicit", head="sequence_classification",
         config={"num_labels": 4, "problem_type": "multi_label_classification"}, labels="multi_label", seed=45),
    # --- multiple choice (B = 2, C = 3; B = 1, C = 3)
    dict(name="multiple_choice", head="multiple_choice", choices=3, lengths=(7, 4, 5, 6, 2, 3), labels="choices",
         attentions=True, hidden=True, seed=50, checks=BF16),
    dict(name="multiple_choice_embeds", head="multiple_choice", choices=3, embeds=True, labels="choices", seed=51),
    # --- token classification
    dict(name="token_cls", head="token_classification", config={"num_labels": 5}, labels="tokens", attentions=True,
         hidden=True, seed=60, checks=ALL),
    dict(name="token_cls_all_ignored", head="token_classification", config={"num_labels": 5}, labels="tokens_ignored",
         seed=61),
    # --- extractive QA
    # The QA loss normalises over every position, padding included, so with padding its gradient
    # reaches the padding rows of the word and position tables, which v4 PyTorch keeps frozen
    # (nn.Embedding padding_idx): the padded case checks that every backend does the same.
    dict(name="question_answering", head="question_answering", lengths=(7, 7, 7), labels="spans", attentions=True,
         hidden=True, seed=70, checks=ALL),
    dict(name="question_answering_padded", head="question_answering", labels="spans", seed=73, checks=GRAD),
    dict(name="question_answering_all_ignored", head="question_answering", labels="spans_ignored", seed=71),
    dict(name="question_answering_no_labels", head="question_answering", seed=72),
    # --- the family: XLM-RoBERTa and CamemBERT (RoBERTa's architecture under their model_type)
    dict(name="xlmr_masked_lm", head="masked_lm", config=XLMR, labels="tokens", hidden=True, seed=80),
    dict(name="xlmr_seq_cls", head="sequence_classification", config={**XLMR, "num_labels": 3}, labels="classes",
         seed=81, checks=GRAD),
    dict(name="camembert_token_cls", head="token_classification", config={**CAMEMBERT, "num_labels": 5},
         labels="tokens", seed=82),
    dict(name="camembert_model", head="model", config=CAMEMBERT, attentions=True, seed=83),
    # --- the family: RoBERTa-PreLayerNorm (LayerNorm before each block, a final LayerNorm; hidden_states[-1]
    # is the encoder's output before that final LayerNorm, as in v4)
    dict(name="preln_model", head="model", config=PRELN, attentions=True, hidden=True, seed=90, checks=ALL),
    dict(name="preln_model_left_padding", head="model", config=PRELN, lengths=(7, 4, 1), padding="left", seed=91),
    dict(name="preln_model_fully_padded_row", head="model", config=PRELN, lengths=(7, 3, 0), hidden=True, seed=92),
    dict(name="preln_model_relative_key_query", head="model", config={**PRELN, "position_embedding_type": "relative_key_query"},
         attentions=True, seed=93),
    dict(name="preln_masked_lm", head="masked_lm", config=PRELN, labels="tokens", hidden=True, seed=94, checks=ALL),
    dict(name="preln_causal_lm_incremental", head="causal_lm", config={**PRELN, **DECODER}, chunks=(4, 1, 2), seed=95),
    dict(name="preln_causal_lm_cross_attention", head="causal_lm", config={**PRELN, **CROSS}, encoder=(4, 3, 1),
         labels="tokens", attentions=True, seed=96, checks=GRAD),
    dict(name="preln_seq_cls", head="sequence_classification", config={**PRELN, "num_labels": 3}, labels="classes",
         hidden=True, seed=97, checks=GRAD),
    dict(name="preln_multiple_choice", head="multiple_choice", config=PRELN, choices=3, lengths=(7, 4, 5, 6, 2, 3),
         labels="choices", seed=98),
    dict(name="preln_token_cls", head="token_classification", config={**PRELN, "num_labels": 5}, labels="tokens",
         seed=99),
    dict(name="preln_question_answering", head="question_answering", config=PRELN, labels="spans", seed=100,
         checks=GRAD),
)
