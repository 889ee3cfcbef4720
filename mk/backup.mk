# Backup and restore (issue 17 item 6).
# `make bench-backup`: `bootfarm backup` and `bootfarm restore` of a 10,000-node fleet on PGlite and on a real
# PostgreSQL (bench/backup.ts; BENCHMARKS.md "Backup and restore"). BACKUP_BENCH_ARGS e.g. "--nodes 30000".
.PHONY: bench-backup
bench-backup: deps
	node --import tsx bench/backup.ts --pg $(BACKUP_BENCH_ARGS)

bench: bench-backup
