# The workshop's commands. Everything works as root and as a user with sudo:
# Go builds and tests as you, only the programs run as root.
GO      ?= go
SUDO    := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Under sudo, keep the same go on PATH and pass strict mode through.
ROOTRUN := $(if $(SUDO),sudo env PATH="$(PATH)" WORKSHOP_STRICT=$(WORKSHOP_STRICT) NO_COLOR=$(NO_COLOR) \
	WORKSHOP_VM_ARM64=$(WORKSHOP_VM_ARM64) WORKSHOP_VM_ACCEL=$(WORKSHOP_VM_ACCEL) WORKSHOP_VM_KERNEL=$(WORKSHOP_VM_KERNEL) WORKSHOP_VM_MODULES=$(WORKSHOP_VM_MODULES))
STAGES  := $(sort $(patsubst %/main.go,%,$(wildcard [0-9][0-9]-*/main.go)))
BIN     := bin
# Built for start-up speed: stage 06 starts its own program several times
# per container. urfave/cli's man-page and markdown generator (unused here)
# pulls in a markdown library whose start-up costs ~0.5 ms, and without cgo
# (archive/tar's os/user asks for it) the programs are static: no dynamic
# loader and libc to start, ~1.3 ms. `go run` works without either.
TAGS    := urfave_cli_no_docs
export CGO_ENABLED := 0
PKGS    ?= ./...

.PHONY: all build tour test test-vm vet fmt fmt-check demo doctor bench clean

all: build

## build: compile every stage and tool into ./bin
build:
	@mkdir -p $(BIN)
	$(GO) build -tags $(TAGS) -o $(BIN)/ $(addprefix ./,$(STAGES)) ./cmd/...

## tour: run every stage in order, non-interactively, with a pass/fail line per stage
tour: build
	$(ROOTRUN) $(BIN)/tour --bin $(BIN) $(STAGES)

## demo STAGE=03: one stage in step mode, for a projector
demo: build
	@test -n "$(STAGE)" || { echo "usage: make demo STAGE=03"; exit 2; }
	$(ROOTRUN) $(BIN)/$(firstword $(filter $(STAGE)%,$(STAGES))) --step

## doctor: can this machine run every stage? (pass/warn/FAIL table, a fix under each failure)
doctor:
	@mkdir -p $(BIN)
	$(GO) build -tags $(TAGS) -o $(BIN)/ ./cmd/doctor
	$(ROOTRUN) $(BIN)/doctor

## bench: time run and exec against unshare (and runc, crun, bwrap when installed); the waiting process's memory
bench: build
	$(ROOTRUN) $(BIN)/bench --bin $(BIN)/06-full-container $(if $(RUNS),--runs $(RUNS))

## test: go vet, every test on the real kernel (packages one at a time), then the same
## tests in a pure cgroup v2 VM under QEMU (docs/testing.md)
test: vet
	$(GO) test -p 1 -count=1 -timeout 12m $(if $(SUDO),-exec '$(ROOTRUN)') $$($(GO) list $(PKGS) | grep -v '/vmtest$$')
	@$(if $(filter ./...,$(PKGS)),$(MAKE) --no-print-directory test-vm,true)

## test-vm: every package's tests inside a pure cgroup v2 VM (its results table is printed)
test-vm:
	@out=$$(mktemp); $(GO) test -count=1 -timeout 25m -v $(if $(SUDO),-exec '$(ROOTRUN)') ./vmtest/ >$$out 2>&1; status=$$?; \
	grep -v -e '^ *=== \(RUN\|PAUSE\|CONT\|NAME\)' -e '^ *--- PASS' $$out; rm -f $$out; exit $$status

vet:
	$(GO) vet ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); [ -z "$$out" ] || { echo "gofmt needed:"; echo "$$out"; exit 1; }

clean:
	rm -rf $(BIN)
