"""The cross-backend conformance tests (test-only, not installed): every case of
`roberta_core.parity.cases` on every installed backend against the float64 reference
(`roberta_core.reference`) and pairwise, the perturbation tests that show the suite catches a
wrong backend, checks of the reference itself, and `roberta parity`'s exit statuses. What they
run is the library's (`roberta_core.parity`); `gpu.sh` runs it on a GPU."""
