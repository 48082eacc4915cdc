# raftmq build. `make run` starts a namesrv and a single-node broker on loopback;
# `make test` is the whole suite CI runs.

GO        ?= go
BIN       := bin/raftmq
PKGS      := ./...
DATA_DIR  ?= $(CURDIR)/data/standalone
GOFLAGS_BUILD := -trimpath -ldflags "-s -w"

.PHONY: all build run run-cluster bench-broker bench-compare test unit interop vet fmt fmt-check bench fuzz clean image up down compose-test compose-test-if-docker

all: build

build:
	CGO_ENABLED=0 $(GO) build $(GOFLAGS_BUILD) -o $(BIN) ./cmd/raftmq

# One process: namesrv on 127.0.0.1:9876 and a single-node broker group on
# 127.0.0.1:10911, store under $(DATA_DIR). Ctrl-C stops both cleanly.
run: build
	./$(BIN) standalone -storePathRootDir $(DATA_DIR)

# A namesrv and a three-node Raft group on loopback (brokers 10911/10921/10931,
# raft 40911-40913, data under data/cluster/). Ctrl-C stops all four.
run-cluster: build
	BIN=./$(BIN) conf/cluster/run-cluster.sh

test: fmt-check vet unit interop compose-test-if-docker

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

# The official Go client against a single-node group: 16 senders, 1 KiB messages,
# then one consumer (RAFTMQ_BENCH_FLUSH=ASYNC_FLUSH for the async figures).
bench-broker: build
	cd interop && RAFTMQ_BENCH=1 $(GO) test -run TestBench -v -count=1 .

# raftmq (3 nodes SYNC_FLUSH; 1 node SYNC and ASYNC) and NATS JetStream (r3sync, r3,
# r1sync, r1) side by side on loopback, the same shapes through `raftmq bench` and
# `nats bench`, then the ratio tables. Installs nats-server and the nats CLI as Go
# modules into $(BENCH_DIR)/bin (minutes from a cold module cache); a run takes about
# 5 minutes (12 with -reps 3). BENCH_COMPARE_FLAGS passes flags, e.g. -reps 3 or
# -configs raftmq3,r3sync -shapes async (go run ./bench/compare -h lists them).
# docs/benchmark.md describes both tools and the first figures.
BENCH_DIR ?= /tmp/raftmq-bench
bench-compare: build
	$(GO) run ./bench/compare -raftmq $(BIN) -dir $(BENCH_DIR) $(BENCH_COMPARE_FLAGS)

clean:
	rm -rf bin

# Docker: the image is FROM scratch around the static binary (no registry needed).
image: build
	docker build -q -t raftmq:latest . >/dev/null
	@echo "built image raftmq:latest"

up: image
	docker-compose up -d
	@echo "namesrvs: 127.0.0.1:9876;127.0.0.1:9877  brokers: 127.0.0.1:10911 10921 10931"

down:
	docker-compose down

# The compose failover test: real containers, the official client on the host, the
# leader killed mid-stream.
compose-test: image
	cd interop && RAFTMQ_COMPOSE_TEST=1 $(GO) test -count=1 -v -timeout 15m -run TestComposeLeaderLoss ./compose/

# `make test` runs the compose test when a Docker Engine answers, and says so when not.
compose-test-if-docker:
	@if docker info >/dev/null 2>&1 && command -v docker-compose >/dev/null 2>&1; then \
		$(MAKE) compose-test; \
	else \
		echo "compose-test skipped: no Docker Engine or docker-compose answers on this machine"; \
	fi
