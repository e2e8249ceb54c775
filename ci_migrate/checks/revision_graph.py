"""The revision graph as alembic's ``RevisionMap`` links it, built from scanned revision files.

``down_revision`` edges decide heads, bases, branch and merge points; a ``depends_on`` entry names a
revision id or a branch label and only orders. Ids declared by several files, names that resolve to
no revision and loops are kept so that the graph check can report each of them.
"""

from __future__ import annotations

import heapq
from collections import defaultdict, deque
from typing import TYPE_CHECKING, Iterator, Sequence

from ci_migrate.report import HeadBranch

if TYPE_CHECKING:
    from ci_migrate.checks.graph import ScannedRevision



class RevisionGraph:
    """Revision ids and their edges, as alembic's RevisionMap links them; file order throughout."""

    def __init__(self, revisions: Sequence[ScannedRevision]) -> None:
        self.files: dict[str, list[ScannedRevision]] = {}  # id -> files declaring it
        self.parents: dict[str, tuple[str, ...]] = {}  # resolved down_revisions
        self.links: dict[str, tuple[str, ...]] = {}  # parents + resolved depends_on
        self.children: dict[str, list[str]] = defaultdict(list)  # along down_revision
        self.missing: list[tuple[ScannedRevision, str, str]] = []  # file, attribute, target
        for rev in revisions:
            if rev.revision is not None:
                self.files.setdefault(rev.revision, []).append(rev)
        # depends_on (and down_revision) may name a branch label too, as in RevisionMap's map_
        labels: dict[str, str] = {}
        for rid, files in self.files.items():
            for label in (lbl for f in files for lbl in f.branch_labels):
                labels.setdefault(label, rid)
        for rid, files in self.files.items():
            # A duplicate id naming itself most likely means the other copy: not a loop.
            skip = {rid} if len(files) > 1 else set()
            parents, deps = [], []
            for f in files:
                for attr, targets, into in (("down_revision", f.down_revisions, parents),
                                            ("depends_on", f.depends_on, deps)):
                    for target in targets:
                        if (found := target if target in self.files else labels.get(target)) is None:
                            self.missing.append((f, attr, target))
                        elif found not in skip:
                            into.append(found)
            self.parents[rid] = tuple(dict.fromkeys(parents))
            self.links[rid] = tuple(dict.fromkeys(parents + deps))
            for p in self.parents[rid]:
                self.children[p].append(rid)

    def topological(self) -> list[str] | None:
        """Base → head (parents and depends_on first), ties in file order; None on a cycle."""
        index = {rid: i for i, rid in enumerate(self.files)}
        waiting = {rid: len(up) for rid, up in self.links.items()}
        down: dict[str, list[str]] = defaultdict(list)
        for rid, up in self.links.items():
            for p in up:
                down[p].append(rid)
        ready = [(index[r], r) for r, n in waiting.items() if not n]
        heapq.heapify(ready)
        order: list[str] = []
        while ready:
            order.append(rid := heapq.heappop(ready)[1])
            for c in down[rid]:
                waiting[c] -= 1
                if not waiting[c]:
                    heapq.heappush(ready, (index[c], c))
        return order if len(order) == len(self.files) else None

    def cycles(self) -> list[list[str]]:
        """Each loop (Tarjan's strongly connected components, iterative) as a walk along links."""
        index: dict[str, int] = {}
        low: dict[str, int] = {}
        stack: list[str] = []
        on_stack: set[str] = set()
        found: list[list[str]] = []
        work: list[tuple[str, Iterator[str]]] = []

        def visit(rid: str) -> None:
            index[rid] = low[rid] = len(index)
            stack.append(rid)
            on_stack.add(rid)
            work.append((rid, iter(self.links[rid])))

        for root in self.files:
            if root in index:
                continue
            visit(root)
            while work:
                rid, it = work[-1]
                for nxt in it:
                    if nxt not in index:
                        visit(nxt)
                        break
                    if nxt in on_stack:
                        low[rid] = min(low[rid], index[nxt])
                else:
                    work.pop()
                    if work:
                        low[work[-1][0]] = min(low[work[-1][0]], low[rid])
                    if low[rid] == index[rid]:
                        comp: set[str] = set()
                        while rid not in comp:
                            w = stack.pop()
                            on_stack.discard(w)
                            comp.add(w)
                        if len(comp) > 1 or rid in self.links[rid]:
                            found.append(self._walk(comp))
        return found

    def _walk(self, comp: set[str]) -> list[str]:
        path = [next(r for r in self.files if r in comp)]
        while True:
            nxt = [p for p in self.links[path[-1]] if p in comp]
            if not (fresh := [p for p in nxt if p not in path]):
                return path + [next(p for p in nxt if p in path)]
            path.append(fresh[0])

    def ancestors(self, rid: str) -> list[str]:
        """``rid`` and everything below it along down_revision, breadth first."""
        seen, queue, out = {rid}, deque([rid]), []
        while queue:
            out.append(cur := queue.popleft())
            for p in self.parents[cur]:
                if p not in seen:
                    seen.add(p)
                    queue.append(p)
        return out

    def head_branches(self, heads: list[str]) -> list[HeadBranch]:
        """Per head: revisions no other head reaches (head first), and the nearest shared one."""
        reach: dict[str, int] = defaultdict(int)
        lines = {h: self.ancestors(h) for h in heads}
        for line in lines.values():
            for rid in line:
                reach[rid] += 1
        return [HeadBranch(head=h, revisions=[r for r in line if reach[r] == 1],
                           fork_point=next((r for r in line if reach[r] > 1), None))
                for h, line in lines.items()]
