# Performance measurement (test/bench/README.md):
#   make bench          RunFunction per kind on steady-state requests built from
#                       the examples, beside the protobuf floor; prints a table
#                       of ratios and the marginal cost per environment/server.
#   make bench-profile  CPU and allocation profiles of the TritonServer path.
#   make load           gRPC load on loopback against .bin/function: plain,
#                       mTLS and two processes behind round robin.
# Variables: BENCH_TIME, BENCH_COUNT (the table keeps the fastest run),
# PROFILE_BENCH, LOAD_FLAGS (e.g. LOAD_FLAGS="-duration 20s -modes plain").

BENCH_TIME    ?= 1s
BENCH_COUNT   ?= 1
BENCH_DIR     := $(BIN)/bench
PROFILE_BENCH ?= TritonServer/AddSubServerStage/RunFunction$$
LOAD_FLAGS    ?=

.PHONY: bench
bench:
	@mkdir -p $(BENCH_DIR)
	@bash -o pipefail -c "go test -run '^$$' -bench . -benchmem -count=$(BENCH_COUNT) -benchtime=$(BENCH_TIME) ./fn/ | tee $(BENCH_DIR)/bench.txt"
	@echo
	@go run ./test/bench < $(BENCH_DIR)/bench.txt | tee $(BENCH_DIR)/table.txt

.PHONY: bench-profile
bench-profile:
	@mkdir -p $(BENCH_DIR)
	go test -run '^$$' -bench '$(PROFILE_BENCH)' -benchmem -benchtime=3s -count=1 \
		-cpuprofile $(BENCH_DIR)/cpu.out -memprofile $(BENCH_DIR)/mem.out -o $(BENCH_DIR)/fn.test ./fn/
	@echo; echo "### CPU, flat"; go tool pprof -top -nodecount=25 $(BENCH_DIR)/fn.test $(BENCH_DIR)/cpu.out 2>/dev/null | tail -n +5
	@echo; echo "### CPU, cumulative"; go tool pprof -top -cum -nodecount=45 $(BENCH_DIR)/fn.test $(BENCH_DIR)/cpu.out 2>/dev/null | tail -n +5
	@echo; echo "### CPU, what RunFunction calls"; go tool pprof -peek 'fn.\(\*Function\).RunFunction$$' $(BENCH_DIR)/fn.test $(BENCH_DIR)/cpu.out 2>/dev/null | grep -v '^ *$$' | tail -n +8
	@echo; echo "### allocated bytes, flat"; go tool pprof -sample_index=alloc_space -top -nodecount=25 $(BENCH_DIR)/fn.test $(BENCH_DIR)/mem.out 2>/dev/null | tail -n +5
	@echo; echo "### allocated objects, cumulative"; go tool pprof -sample_index=alloc_objects -top -cum -nodecount=40 $(BENCH_DIR)/fn.test $(BENCH_DIR)/mem.out 2>/dev/null | tail -n +5

.PHONY: load
load: function
	go build -o $(BIN)/load ./test/load
	$(BIN)/load -function $(FUNCTION) $(LOAD_FLAGS)
