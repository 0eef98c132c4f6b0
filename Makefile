# Benchmarks are run by hand (not in the test suite); each writes benchmarks/results/.
.PHONY: test bench bench-speed bench-longrun bench-ray samples
test:
	python -m pytest -q
bench: bench-speed bench-longrun bench-ray
bench-speed:
	cd benchmarks && python bench_speed.py
bench-longrun:
	cd benchmarks && python bench_longrun.py
bench-ray:
	cd benchmarks && python bench_ray.py
samples:
	python samples/make_samples.py
