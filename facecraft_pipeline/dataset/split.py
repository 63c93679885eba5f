"""Train/val split by groups, so near-identical images never sit on both sides.

A val image whose twin (same photo, a burst neighbour, an edit) is in train measures memory,
not generalisation. Groups are connected components of "these belong together" links; whole
groups are assigned, in a seeded order that does not depend on the input order.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np


def connected_groups(count: int, links: Iterable[tuple[int, int]]) -> list[int]:
    """Group id per item (the smallest member index of its component), by union-find."""
    parent = list(range(count))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in links:
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return [root(i) for i in range(count)]


def links_by_key(keys: Sequence[str]) -> list[tuple[int, int]]:
    """Link every item to the first item that shares its key (e.g. its source photo id)."""
    first: dict[str, int] = {}
    links = []
    for index, key in enumerate(keys):
        if key in first:
            links.append((first[key], index))
        else:
            first[key] = index
    return links


def split_groups(groups: Sequence[int], sort_keys: Sequence[str], val_fraction: float, seed: int) -> list[str]:
    """ "train" or "val" per item; whole groups go to one side.

    Groups are ordered by their smallest `sort_keys` entry (content hashes, so the input order
    does not matter), shuffled with `seed`, and given to val until it holds about `val_fraction`
    of the items. With at least two groups and a positive fraction, val gets at least one group
    and train keeps at least one.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    members: dict[int, list[int]] = {}
    for index, group in enumerate(groups):
        members.setdefault(group, []).append(index)
    ordered = sorted(members.values(), key=lambda m: min(sort_keys[i] for i in m))
    permutation = np.random.default_rng(seed).permutation(len(ordered))
    ordered = [ordered[i] for i in permutation]
    target = round(val_fraction * len(groups))
    sides = ["train"] * len(groups)
    in_val = 0
    val_groups = 0
    for group_members in ordered:
        if in_val + len(group_members) <= target and val_groups < len(ordered) - 1:
            for i in group_members:
                sides[i] = "val"
            in_val += len(group_members)
            val_groups += 1
    if val_groups == 0 and val_fraction > 0 and len(ordered) >= 2:
        smallest = min(ordered, key=len)
        for i in smallest:
            sides[i] = "val"
    return sides
