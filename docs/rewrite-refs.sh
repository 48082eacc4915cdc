#!/usr/bin/env bash
# rewrite-refs.sh: point code comments at documents inside the repository.
#
# Comments used to cite documents that were never in the repo: "PROTOCOL.md
# §x.y", "notes §4.x" / "design §4.x" / a bare "§4.x" (the Raft/CommitLog
# design study), "gotcha Gnn" / "(Gnn)", "the brief", "the design notes",
# "reliability.md". This script rewrites them, in every *.go file below the
# current directory, to docs/protocol.md, docs/storage.md and docs/raft.md:
#
#   PROTOCOL.md §x.y            -> docs/protocol.md §x.y   (same numbers)
#   gotcha Gnn, (Gnn)           -> docs/protocol.md Gnn    (§7, same ids)
#   notes/design §4.N, §4.N     -> docs/storage.md §N      (N = 1..12, same numbers)
#                                  docs/raft.md §M         (Raft-side topics, table below)
#   a few one-off sentences     -> rewritten in plain words or with a docs/ reference
#
# Run it from the repository root:  bash docs/rewrite-refs.sh
# It is idempotent (a second run changes nothing), edits files with sed -i,
# and finishes with a check: it prints every citation it could not rewrite,
# and every docs/ reference whose section does not exist, and then exits 2.
# Exit 0 means every reference resolves. Run gofmt -l and go build after it.
set -euo pipefail
export LC_ALL=C

if [[ ! -f go.mod || ! -f docs/protocol.md || ! -f docs/storage.md || ! -f docs/raft.md ]]; then
	echo "rewrite-refs.sh: run me from the repository root (go.mod and docs/*.md not found)" >&2
	exit 1
fi

mapfile -d '' files < <(find . -name '*.go' -not -path './.git/*' -not -path '*/vendor/*' -print0 | sort -z)

# Escape a literal for a sed BRE pattern (delimiter |), and for a replacement.
pat() { printf '%s' "$1" | sed -e 's/[]\\|.*^$[]/\\&/g'; }
rep() { printf '%s' "$1" | sed -e 's/[\\|&]/\\&/g'; }

# Literal one-off rewrites: old line fragment -> new fragment. Each old text
# is unique in the tree and does not occur in its own replacement, so a
# second run finds nothing to do.
literal=(
	# commitlog/doc.go: the design study path and its section list.
	'// It follows /work/shared/notes/raft-commitlog-design.md §4 (record framing'
	'// The format and its crash-safety argument are in docs/storage.md (record framing'
	'// §4.3, hook §4.4, sidecar §4.5, methods §4.6, truncation §4.7, retention'
	'// §3, hook §4, sidecar §5, methods §6, truncation §7, retention'
	'// §4.8, reset §4.9, recovery §4.10, flush modes §4.11, zero copy §4.12).'
	'// §8, reset §9, recovery §10, flush modes §11, zero copy §12).'
	'// Where it differs, and why:'
	'// Where it differs from the design study it started from, and why:'
	# commitlog/sidecar.go
	'Deviation from §4.5: the active segment'
	'Unlike the original design, the active segment'
	# commitlog/recover.go: "(design\n// §4.10)" across two lines.
	'// recover rebuilds the in-memory state from the segment files (design'
	'// recover rebuilds the in-memory state from the segment files'
	'// §4.10). It scans from the first retained record'
	'// (docs/storage.md §10). It scans from the first retained record'
	# commitlog/read.go
	'(design I5)'
	'(docs/storage.md §1, I5)'
	'(design §5.10;'
	'(docs/storage.md §12;'
	# dledger/doc.go
	'// Choices that differ from notes/raft-commitlog-design.md:'
	'// Choices that differ from the original design study (docs/raft.md §14):'
	'count (§4.3 had a u16 count and a reserved u32).'
	'count (the study had a u16 count and a reserved u32).'
	# message/doc.go
	'// Choices that differ from, or sharpen, the brief and the design notes:'
	'// Choices that differ from, or sharpen, RocketMQ (docs/protocol.md §3):'
	# broker/doc.go
	'// Choices that differ from, or sharpen, the design notes:'
	'// Choices that differ from Java RocketMQ (docs/protocol.md, docs/raft.md):'
	# remoting/doc.go
	'// Choices that differ from or refine the design notes:'
	'// Choices that differ from or refine Java RocketMQ (docs/protocol.md §1):'
	'JSON are accepted and kept as their JSON text (reliability.md §6 suggests'
	'JSON are accepted and kept as their JSON text (a strict decoder would'
	'rejecting them; the task asks to accept sloppy clients). Output values are'
	'reject them; raftmq accepts sloppy clients). Output values are'
	# commitlog/consumequeue/store.go
	'// Choices beyond RocketMQ and the design notes:'
	'// Choices beyond RocketMQ (docs/storage.md §13):'
	# broker/lockmgr/lockmgr.go: a bare protocol section.
	'clients encode it in lock bodies (§5.9)'
	'clients encode it in lock bodies (docs/protocol.md §5.9)'
	# interop/namesrv_test.go: a bare gotcha id.
	'checks G9: for a topic'
	'checks docs/protocol.md G9: for a topic'
)

lit_args=()
for ((i = 0; i < ${#literal[@]}; i += 2)); do
	lit_args+=(-e "s|$(pat "${literal[i]}")|$(rep "${literal[i + 1]}")|g")
done

# Protocol citations (all files).
proto_args=(
	-e 's/PROTOCOL\.md/docs\/protocol.md/g'
	-e 's/PROTOCOL §/docs\/protocol.md §/g'
	# "(PROTOCOL.md §6.6, gotcha G20)": the section's document already names it.
	-e 's/(§[0-9]+\.[0-9]+), gotcha (G[0-9]+)/\1, \2/g'
	-e 's/gotcha (G[0-9]+)/docs\/protocol.md \1/g'
	-e 's/\((G[0-9]+)\)/(docs\/protocol.md \1)/g'
)

# Where a section 4.N of the design study went. commitlog/ cites the storage
# side of every topic; everything else cites the Raft side where there is one.
target() { # dir-kind N
	local kind=$1 n=$2
	case $n in
	13) echo 'docs/raft.md §5' ;;
	14) echo 'docs/raft.md §12' ;;
	15) echo 'docs/raft.md §13' ;;
	*)
		if [[ $kind == storage ]]; then
			echo "docs/storage.md §$n"
		else
			case $n in
			4) echo 'docs/raft.md §3' ;;
			8) echo 'docs/raft.md §10' ;;
			9) echo 'docs/raft.md §8' ;;
			10) echo 'docs/raft.md §9' ;;
			11) echo 'docs/raft.md §11' ;;
			*) echo "docs/storage.md §$n" ;;
			esac
		fi
		;;
	esac
}

notes_args() { # dir-kind bare(0/1)
	local kind=$1 bare=$2 n t
	for n in $(seq 15 -1 1); do
		t=$(target "$kind" "$n") # no '#', '&' or '\\' in a target
		printf '%s\0' -e "s#(notes|design) §4\\.$n\\b#$t#g"
		if [[ $bare == 1 ]]; then
			# A bare "§4.N" is the design study only in commitlog/ and
			# dledger/, which cite no protocol §4.x; "protocol.md §4.1"
			# (ends in d) is never touched.
			printf '%s\0' -e "s#\\(§4\\.$n\\b#($t#g"
			printf '%s\0' -e "s#([^d]) §4\\.$n\\b#\\1 $t#g"
			printf '%s\0' -e "s#^// §4\\.$n\\b#// $t#g"
		fi
	done
}
mapfile -d '' notes_storage_bare < <(notes_args storage 1)
mapfile -d '' notes_raft_bare < <(notes_args raft 1)
mapfile -d '' notes_raft < <(notes_args raft 0)

changed=0
for f in "${files[@]}"; do
	rel=${f#./}
	case $rel in
	commitlog/*) nargs=("${notes_storage_bare[@]}") ;;
	dledger/*) nargs=("${notes_raft_bare[@]}") ;;
	*) nargs=("${notes_raft[@]}") ;;
	esac
	before=$(cksum <"$f")
	sed -i "${lit_args[@]}" "$f"
	sed -i -E "${proto_args[@]}" "${nargs[@]}" "$f"
	if [[ $(cksum <"$f") != "$before" ]]; then
		changed=$((changed + 1))
		echo "rewrote $rel"
	fi
done
echo "rewrite-refs.sh: $changed file(s) changed"

# Check 1: citations of documents outside the repository that are left.
left=$(
	grep -nHE 'PROTOCOL|notes §|notes/|the brief|DESIGN\.md|design §|design notes|design I[0-9]|reliability\.md|client-failover\.md|features\.md|/work/shared|gotcha G[0-9]|\(G[0-9]+\)' "${files[@]}" || true
	# a bare §4.x not preceded by "protocol.md " is a design-study section
	grep -nHP '(?<!protocol\.md )§4\.[0-9]' "${files[@]}" || true
)

# Check 2: every docs/ reference names a section or gotcha that exists.
missing=""
while IFS= read -r ref; do
	doc=${ref%% *}
	sec=${ref#* }
	sec=${sec%.}
	case $sec in
	G*) grep -qE "^\* \*\*$sec\.\*\*" "$doc" || missing+="$doc $sec"$'\n' ;;
	§*)
		num=${sec#§}
		num=${num%%[!0-9.]*}
		num=${num%.}
		if [[ $doc == docs/protocol.md ]]; then
			grep -qE "^##+ ${num//./\\.}[. ]" "$doc" || missing+="$doc $sec"$'\n'
		else
			grep -qE "^## ${num}\. " "$doc" || missing+="$doc $sec"$'\n'
		fi
		;;
	esac
done < <(grep -ohE 'docs/(protocol|storage|raft)\.md (§[0-9][0-9.]*|G[0-9]+)' "${files[@]}" | sort -u)

if [[ -n $left || -n $missing ]]; then
	if [[ -n $left ]]; then
		echo
		echo "Citations this script cannot rewrite (reword them by hand):"
		echo "$left"
	fi
	if [[ -n $missing ]]; then
		echo
		echo "docs/ references to sections that do not exist:"
		printf '%s' "$missing"
	fi
	exit 2
fi
echo "rewrite-refs.sh: every reference resolves inside the repository"
