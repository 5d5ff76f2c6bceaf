# Thin wrapper over CMake for the README's commands.
#   make demo   install what is missing, build, run a local cluster demo
#   make test   install what is missing, build twice (plain, ASan+UBSan), run every test
#   make bench  run the benchmarks
#   make install  install the program, libvigil, headers, pkg-config file, man
#                 pages and systemd units under PREFIX (default /usr/local),
#                 staged under DESTDIR if set: make install PREFIX=/usr DESTDIR=/tmp/stage
#   make deb    build the Debian package build/vigil_VERSION_ARCH.deb
#   make bench-serf  detection against Serf in network namespaces (root, serf; ~15 min)
#                    options through SERF_ARGS, e.g. SERF_ARGS='--loss 0,20 --duration 120'
#   make bench-peer-serf  vigil peer against Serf, members in network namespaces (root, serf; ~11 min)
#                    options through PEER_SERF_ARGS, e.g. PEER_SERF_ARGS='--kills 8 --duration 200'
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
PREFIX ?= /usr/local

.PHONY: all deps build build-asan demo test test-plain test-asan bench bench-serf bench-peer-serf install deb format format-check clean

all: build

deps:
	@bash scripts/install-deps.sh

build: deps
	@cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build build -j $(JOBS)

build-asan: deps
	@cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DVIGIL_SANITIZE=ON >/dev/null
	@cmake --build build-asan -j $(JOBS)

# The demo shows the build's output only when the build fails.
demo: deps
	@mkdir -p build
	@{ cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo && cmake --build build -j $(JOBS) --target vigil; } \
	  >build/demo-build.log 2>&1 || { cat build/demo-build.log; echo "make demo: the build failed (build/demo-build.log)" >&2; exit 1; }
	@bash scripts/demo.sh build/vigil

test-plain: build
	cd build && ctest --output-on-failure -j $(JOBS)

test-asan: build-asan
	cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure -j $(JOBS)

test: test-plain test-asan

install: build
	@DESTDIR="$(DESTDIR)" cmake --install build --prefix "$(PREFIX)"

deb: build
	@rm -f build/vigil_*.deb
	@cd build && cpack -G DEB >cpack.log 2>&1 || { cat cpack.log; exit 1; }
	@ls build/vigil_*.deb

bench: build
	@bash bench/run.sh build

bench-serf: build
	@python3 bench/detect_vs_serf.py --vigil build/vigil $(SERF_ARGS)

bench-peer-serf: build
	@python3 bench/peer_vs_serf.py --vigil build/vigil $(PEER_SERF_ARGS)

format:
	@clang-format -i $$(git ls-files '*.c' '*.h')

format-check:
	@bash scripts/check-format.sh

clean:
	rm -rf build build-asan
