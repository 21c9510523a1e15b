"""`merv verify STORE [--deep] [--repair-root]`: is every committed shard as it was committed?

Checks each commit marker is readable and each committed shard file exists with the recorded
size and sha256; ``--deep`` also decodes every committed shard's rows. Damaged shards are
listed (encoder, shard, problem) and the exit status is 1; the next `merv extract` recomputes
them. ``--repair-root`` rebuilds a lost root ``zarr.json`` from the arrays first.
"""

from __future__ import annotations


def add_parser(sub) -> None:
    """The `verify` subcommand (it dispatches itself: ``args.handler``)."""
    p = sub.add_parser(
        "verify",
        help="check committed shards against their checksums",
        description="Check every commit marker and committed shard file (size, sha256); list "
        "the damaged ones and exit 1 when there are any.",
    )
    p.add_argument("store")
    p.add_argument("--deep", action="store_true", help="also decode every committed shard")
    p.add_argument(
        "--repair-root",
        action="store_true",
        dest="repair_root",
        help="rebuild a lost root zarr.json from the arrays first",
    )
    p.set_defaults(handler=lambda args: verify_store(args.store, args.deep, args.repair_root))


def verify_store(url: str, deep: bool = False, repair_root: bool = False, echo=print) -> int:
    """Print the damaged shards of the store at ``url``; 0 when there is none, else 1."""
    from pipeline.store import FeatureStore
    from pipeline.store.root import rebuild_root

    if repair_root:
        attrs = rebuild_root(url)
        echo(f"rebuilt {url}/zarr.json: encoders {', '.join(attrs['encoders'])}")
    store = FeatureStore.open(url)
    damage = store.damaged(hashes=True, deep=deep)
    committed = sum(len(g) + len(b) for g, b in map(store.scan_markers, store.encoders))
    check = "sizes, sha256 and decoding" if deep else "sizes and sha256"
    if not damage:
        echo(f"store {url}: {committed} committed shard markers, all ok ({check})")
        return 0
    echo(f"store {url}: {len(damage)} damaged of {committed} committed shard markers ({check}):")
    width = max(len("encoder"), *(len(d.encoder) for d in damage))
    echo(f"{'encoder':<{width}}  {'shard':>5}  problem")
    for d in damage:
        echo(f"{d.encoder:<{width}}  {d.shard:>5}  {d.problem}")
    echo("run `merv extract` on this store to recompute them")
    return 1
