"""The published book: every TOC chapter's result comes from the book profile and its current source.

Fails when a chapter's notebook code or parameters changed after its published run (the run
record's ``source_hash`` no longer matches, see :func:`cellrepro.publish.record.stale`), when a
verdict was judged under a registration that has changed since (``registrations.yml``), when a
record of the registered protocol (``verdict_protocol`` 2, the chapters republished under issue 26
and later) was made from uncommitted changes, when the published record is not from the ``book``
profile, or when a chapter was never published.
The fix is to re-run it: ``cellrepro run <paper/experiment> --profile book --out book/<paper>``
(or ``cellrepro book --profile book``) and commit the result.
"""

from cellrepro.publish.record import published


def test_every_published_chapter_is_current_and_from_the_book_profile(repo):
    problems = []
    for nb in repo.toc_notebooks():
        pub = published(repo, nb)
        if pub is None:
            problems.append(f"{nb.key}: no published record (book/{nb.key}.record.json)")
            continue
        if pub["profile"] != "book":
            problems.append(f"{nb.key}: published from the {pub['profile']!r} profile, not 'book'")
        if pub["stale"]:
            problems.append(f"{nb.key}: stale (source hash {pub['source_hash']}; the notebook changed since it ran)")
        if pub["stale_verdicts"]:
            problems.append(f"{nb.key}: verdicts judged under a registration changed since: {pub['stale_verdicts']}")
        if pub["verdict_protocol"] >= 2 and pub["dirty"] is not False:
            problems.append(f"{nb.key}: published from uncommitted changes (commit {pub['commit']}); "
                            "publish from a clean checkout")
    assert problems == []
