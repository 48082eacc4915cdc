# raftmq build. `make run` starts a namesrv and a single-node broker on loopback;
# `make test` is the whole suite CI runs.

GO        ?= go
BIN       := bin/raftmq
PKGS      := ./...
DATA_DIR  ?= $(CURDIR)/data/standalone
GOFLAGS_BUILD := -trimpath -ldflags "-s -w"

.PHONY: all build run test unit interop vet fmt fmt-check bench fuzz clean

all: build

build:
	CGO_ENABLED=0 $(GO) build $(GOFLAGS_BUILD) -o $(BIN) ./cmd/raftmq

# One process: namesrv on 127.0.0.1:9876 and a single-node broker group on
# 127.0.0.1:10911, store under $(DATA_DIR). Ctrl-C stops both cleanly.
run: build
	./$(BIN) standalone -storePathRootDir $(DATA_DIR)

test: fmt-check vet unit interop

unit:
	$(GO) test -race -timeout 20m $(PKGS)

interop: build
	cd interop && $(GO) test -timeout 15m ./...

vet:
	$(GO) vet $(PKGS)
	cd interop && $(GO) vet ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

bench:
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

clean:
	rm -rf bin
