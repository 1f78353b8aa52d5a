"""test_drain_failures.py - what wahook-drain does with each class of Graph API
failure (doc/graph-api.md's table): transient ones are retried until they succeed,
without repeating a finished step; permanent ones dead-letter the row with its
code and let the conversation move on; a refused token stops the run (exit 3)
with nothing dead; the attempts and age limits dead-letter; 131056 holds back
its own conversation only.
"""
import unittest

import drainkit as dk

pg = server = None


setUpModule, tearDownModule = dk.module_stack(globals())


class DrainFailures(dk.DrainCase):
    def test_transient_errors_are_retried_and_no_step_repeats(self):
        convs = dk.feed(server, conversations=6, per_conv=2)
        (s1, (a1, a2)), (s2, (b1, _)), (s3, (c1, _)), (s4, (d1, _)), (s5, (e1, _)), \
            (s6, (f1, _)) = convs.items()
        cases = [   # (message, step, kind, times)
            (a1, "read", "5xx", 2),            # 503, HTML body: the status decides
            (b1, "reply", "429", 1),           # 429 / 130429, after its read succeeded
            (c1, "read", "hang", 1),           # no answer: our timeout
            (d1, "reply", "transient_flag", 1),  # 400 but is_transient: true
            (e1, "read", "500", 1),            # 500, code 1
            (f1, "reply", "slow", 1),          # slow but within the timeout: no retry
        ]
        for m, step, kind, times in cases:
            self.g.answer(kind, step=step, message_id=m, times=times)
        self.g.slow_s = 0.3
        self.g.hang_s = 3
        runs = dk.drain_until_done(pg, self.g, WAHOOK_HTTP_TIMEOUT=1, WAHOOK_LEASE=3)
        self.assertEqual(self.g.violations, [])
        rows = dk.outbox(pg)
        self.assertEqual({r["state"] for r in rows.values()}, {"done"})
        for m in [x for v in convs.values() for x in v]:
            # exactly one successful call of each step, whatever failed around it
            self.assertEqual(self.g.count("read", m, ok_only=True), 1, m)
            self.assertEqual(self.g.count("reply", m, ok_only=True), 1, m)
        self.assertEqual(self.g.count("read", a1), 3)
        self.assertEqual(self.g.count("read", b1), 1, "a finished step was repeated")
        self.assertEqual(self.g.count("reply", b1), 2)
        self.assertEqual(self.g.count("read", d1), 1, "a finished step was repeated")
        self.assertEqual(self.g.count("reply", f1), 1, "slow is not failed")
        self.assertEqual(rows[a1]["attempts"], "2")
        self.assertIn("http=503", rows[a1]["last_error"])
        self.assertIn("code=130429 http=429", rows[b1]["last_error"])
        self.assertIn("http=0 msg=curl: Timeout", rows[c1]["last_error"])
        self.assertEqual(rows[f1]["attempts"], "0")
        # the hanging conversation held one slot; the others went on meanwhile
        calls = self.g.snapshot()
        hung = next(c for c in calls if c["kind"] == "hang")
        again = next(c for c in calls if c["message_id"] == c1 and c["n"] > hung["n"])
        self.assertTrue([c for c in calls if hung["n"] < c["n"] < again["n"]
                         and c["message_id"] != c1 and c["status"] == 200],
                        "every conversation waited for the hanging call")
        # the conversation held back behind its retrying head, then went in order
        seq = [(c["step"], c["message_id"]) for c in self.g.ok() if c["message_id"] in (a1, a2)]
        self.assertEqual(seq, [("read", a1), ("reply", a1), ("read", a2), ("reply", a2)])
        log = "".join(r.err for r in runs)
        self.assertIn("outcome=retry", log)
        self.assertNotIn(dk.ACCESS_TOKEN, log)

    def test_permanent_errors_dead_letter_and_the_conversation_moves_on(self):
        convs = dk.feed(server, conversations=2, per_conv=2)
        (s1, (a1, a2)), (s2, (b1, b2)) = convs.items()
        self.g.answer("131047", step="reply", message_id=a1)
        self.g.answer("131009", step="read", message_id=b1)
        r = dk.run(pg, self.g)
        self.assertEqual(r.rc, 0, r)      # nothing pending: dead rows are not left over
        rows = dk.outbox(pg)
        self.assertEqual(rows[a1]["state"], "dead")
        self.assertIsNotNone(rows[a1]["read_at"], "the read step succeeded and is kept")
        self.assertTrue(rows[a1]["last_error"].startswith(
            "code=131047 http=400 msg=(#131047) Re-engagement message"), rows[a1])
        self.assertEqual(rows[b1]["state"], "dead")
        self.assertTrue(rows[b1]["last_error"].startswith("code=131009 http=400 msg="))
        self.assertEqual(self.g.count("reply", b1), 0, "no reply after a dead mark-read")
        self.assertEqual(self.g.count("reply", a1), 1, "a permanent error is not retried")
        for m in (a2, b2):
            self.assertEqual(rows[m]["state"], "done")
        self.assertEqual(rows[a1]["attempts"], "1")
        self.assertIn("outcome=dead", r.err)

    def test_refused_token_stops_everything_and_marks_nothing_dead(self):
        convs = dk.feed(server, conversations=8, per_conv=2)
        self.g.answer("401")
        r = dk.run(pg, self.g, WAHOOK_CONCURRENCY=2)
        self.assertEqual(r.rc, 3, r)
        self.assertIn("ev=credentials", r.err)
        self.assertNotIn(dk.ACCESS_TOKEN, r.err + r.out)
        # stopped at once: at most the calls already in flight, not one per row
        self.assertLessEqual(len(self.g.snapshot()), 2)
        rows = dk.outbox(pg)
        self.assertEqual({x["state"] for x in rows.values()}, {"pending"})
        self.assertEqual({x["attempts"] for x in rows.values()}, {"0"})
        self.assertEqual({x["lease_until"] for x in rows.values()}, {None},
                         "rows must wait for a new token, not for a lease")
        self.assertTrue(any("code=190 http=401" in (x["last_error"] or "")
                            for x in rows.values()))
        # a new token: the next run does everything
        self.g.clear_rules()
        r = dk.run(pg, self.g)
        self.assertEqual(r.rc, 0, r)
        for m in [x for v in convs.values() for x in v]:
            self.assertEqual(self.g.count("reply", m, ok_only=True), 1)

    def test_attempts_limit_dead_letters(self):
        convs = dk.feed(server, conversations=2, per_conv=1)
        (s1, (a1,)), (s2, (b1,)) = convs.items()
        self.g.answer("5xx", step="read", message_id=a1)      # always
        runs = dk.drain_until_done(pg, self.g, WAHOOK_MAX_ATTEMPTS=3)
        rows = dk.outbox(pg)
        self.assertEqual(rows[a1]["state"], "dead")
        self.assertEqual(rows[a1]["attempts"], "3")
        self.assertIn("http=503", rows[a1]["last_error"])
        self.assertIn("WAHOOK_MAX_ATTEMPTS", rows[a1]["last_error"])
        self.assertEqual(self.g.count("read", a1), 3)
        self.assertEqual(rows[b1]["state"], "done")
        self.assertTrue(runs)

    def test_age_limit_dead_letters_without_calling(self):
        convs = dk.feed(server, conversations=1, per_conv=2)
        (s1, (a1, a2)), = convs.items()
        pg.psql("UPDATE wa_outbox SET received_at = now() - interval '2 days' "
                "WHERE message_id = '%s'" % a1)
        r = dk.run(pg, self.g)
        self.assertEqual(r.rc, 0, r)
        rows = dk.outbox(pg)
        self.assertEqual(rows[a1]["state"], "dead")
        self.assertIn("WAHOOK_MAX_AGE", rows[a1]["last_error"])
        self.assertEqual(self.g.count(message_id=a1), 0)
        self.assertEqual(rows[a2]["state"], "done")

    def test_pair_rate_limit_holds_back_that_conversation_only(self):
        convs = dk.feed(server, conversations=2, per_conv=3)
        (s1, a), (s2, b) = convs.items()
        self.g.answer("131056", step="reply", message_id=a[0], times=1)
        r = dk.run(pg, self.g, ["--for", "3"], WAHOOK_RETRY_MIN=1, WAHOOK_RETRY_MAX=1)
        self.assertEqual(r.rc, 0, r)
        calls = self.g.snapshot()
        fail = next(c for c in calls if c["kind"] == "131056")
        retry = next(c for c in calls if c["step"] == "reply" and c["message_id"] == a[0]
                     and c["status"] == 200)
        b_calls = [c for c in calls if c["message_id"] in b]
        self.assertEqual(len(b_calls), 6)
        # B went on while A waited out its backoff
        self.assertTrue(all(c["n"] < retry["n"] for c in b_calls),
                        "conversation B waited for A's pair-rate backoff")
        # A stayed in order: nothing of a[1] before a[0]'s retry succeeded
        a1_calls = [c for c in calls if c["message_id"] == a[1]]
        self.assertTrue(all(c["n"] > retry["n"] for c in a1_calls))
        self.assertGreater(retry["n"], fail["n"])
        rows = dk.outbox(pg)
        self.assertEqual(rows[a[0]]["attempts"], "1")
        self.assertIn("code=131056", rows[a[0]]["last_error"])
        self.assertEqual({x["state"] for x in rows.values()}, {"done"})


if __name__ == "__main__":
    unittest.main()
