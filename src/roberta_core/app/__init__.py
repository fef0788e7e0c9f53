"""The application layer: what `roberta pretrain`, `finetune` and `demo` run, built on the library.

The library (`roberta_core` and the three backends) is a model, its weights, checkpoints,
tokenizers, the data pipeline (`roberta_core.data`) and each backend's trainer. The application
is the RoBERTa recipe driven end to end on top of it:

    recipe      pretraining runs: a BPE vocabulary learnt from the corpus, token files, the
                training loop (`fit`), checkpoints and resumption, held-out evaluation
    finetune    fine-tuning a checkpoint on a task from JSON lines (or the built-in one)
    demo        the whole recipe on the built-in corpus, in minutes on a CPU
    corpus      the built-in corpus and task (Python's own documentation)

The library never imports the application; the command-line front ends of these modules live in
`roberta_core.commands`. No framework is imported here until a backend's trainer is asked for.
"""
