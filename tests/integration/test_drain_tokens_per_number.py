"""test_drain_tokens_per_number.py - many numbers, many tokens: each number calls
the Graph API with its own token from WAHOOK_ACCESS_TOKENS_FILE (the single
token serves the others); a refused token stops only its number's rows, which
stay pending and untouched, show in --status and --metrics, and make the run
exit 3 while every other number is drained; a renewed file lets them go.
The file is refused (exit 2) when other users may read it or a line is wrong.
"""
import collections

import harness
import drainkit as dk

pg = server = None
ONE, TWO, RENEWED = sorted(dk.NUMBER_TOKENS)
FALLBACK_NUMBER = dk.PNID      # not in the file: the single token


setUpModule, tearDownModule = dk.module_stack(globals())


def feed(pnid, convs, per_conv):
    return dk.feed(server, convs, per_conv, pnid=pnid)


class TokensPerNumber(dk.DrainCase):
    def setUp(self):
        super().setUp()
        self.g.stop()
        self.tok = dict(dk.NUMBER_TOKENS)
        self.g = dk.GraphStandin(dk.ACCESS_TOKEN, tokens={ONE: self.tok[ONE],
                                                          TWO: self.tok[TWO]})
        self.dir = harness.tmpdir("wahook-tokens-")

    def test_refused_token_stops_only_its_number(self):
        convs = {ONE: feed(ONE, 4, 3), TWO: feed(TWO, 5, 2),
                 FALLBACK_NUMBER: feed(FALLBACK_NUMBER, 3, 2)}
        self.g.refused.add(self.tok[TWO])
        tf = dk.tokens_file(self.dir, [(ONE, self.tok[ONE]), (TWO, self.tok[TWO])])
        r = dk.run(pg, self.g, WAHOOK_ACCESS_TOKENS_FILE=tf,
                   WAHOOK_CONCURRENCY=4)
        self.assertEqual(r.rc, 3, r)
        self.assertEqual(self.g.violations, [])
        self.assertEqual(r.err.count("ev=credentials"), 1, r)
        self.assertRegex(r.err, r"ev=credentials number=%s" % TWO)
        for t in self.tok.values():
            self.assertNotIn(t, r.err + r.out)
        rows = dk.query(pg, "SELECT phone_number_id, state, attempts, read_at IS NULL, "
                        "lease_until IS NULL, coalesce(last_error, '') FROM wa_outbox")
        by = collections.defaultdict(list)
        for n, state, attempts, unread, unleased, err in rows:
            by[n].append((state, attempts, unread, unleased, err))
        # every other number went on: all done, in order, with the right token
        for n in (ONE, FALLBACK_NUMBER):
            self.assertEqual({x[0] for x in by[n]}, {"done"}, n)
            self.assert_in_order(convs[n], only_ok=True)
        # the refused number: pending, never counted as an attempt, not read,
        # not leased; the rows whose call was refused say why
        self.assertEqual({x[:4] for x in by[TWO]}, {("pending", "0", "t", "t")})
        said = [x[4] for x in by[TWO] if x[4]]
        self.assertGreaterEqual(len(said), 1)
        for e in said:
            self.assertRegex(e, r"^auth: code=190 http=401 ")
        # refused calls: at most one per conversation claimed before the refusal
        two_calls = [c for c in self.g.snapshot() if c["pnid"] == TWO]
        self.assertLessEqual(len(two_calls), 4)
        self.assertEqual({c["status"] for c in two_calls}, {401})
        self.assertEqual({c["step"] for c in two_calls}, {"read"})
        # --status and --metrics say which number and how many rows wait
        st = dk.run(pg, None, ["--status"], WAHOOK_ACCESS_TOKEN=None)
        self.assertEqual(st.rc, 0, st)
        self.assertRegex(st.out, r"numbers whose token was refused +1\n +%s +10 pending"
                         % TWO)
        m = dk.run(pg, None, ["--metrics"], WAHOOK_ACCESS_TOKEN=None)
        self.assertIn("\nwahook_outbox_token_refused_numbers 1\n", m.out)
        self.assertIn('\nwahook_outbox_token_refused_pending{phone_number_id="%s"} 10\n'
                      % TWO, m.out)
        # a renewed token in the file: the number's rows go, in order
        self.g.tokens[TWO] = self.tok[RENEWED]
        tf = dk.tokens_file(self.dir, [(ONE, self.tok[ONE]), (TWO, self.tok[RENEWED])])
        r = dk.run(pg, self.g, WAHOOK_ACCESS_TOKENS_FILE=tf)
        self.assertEqual(r.rc, 0, r)
        self.assertEqual({x["state"] for x in dk.outbox(pg).values()}, {"done"})
        self.assert_in_order(convs[TWO], only_ok=True)
        self.assertEqual(self.g.violations, [])
        m = dk.run(pg, None, ["--metrics"], WAHOOK_ACCESS_TOKEN=None)
        self.assertIn("\nwahook_outbox_token_refused_numbers 0\n", m.out)

    def test_number_without_any_token_waits(self):
        convs = feed(FALLBACK_NUMBER, 2, 1)
        feed(ONE, 2, 1)
        tf = dk.tokens_file(self.dir, [(ONE, self.tok[ONE])])
        r = dk.run(pg, self.g, WAHOOK_ACCESS_TOKEN=None, WAHOOK_ACCESS_TOKENS_FILE=tf)
        self.assertEqual(r.rc, 3, r)
        self.assertIn("no access token for this phone_number_id", r.err)
        self.assertEqual([c["pnid"] for c in self.g.snapshot()].count(FALLBACK_NUMBER), 0)
        states = dk.query(pg, "SELECT phone_number_id, state FROM wa_outbox")
        self.assertEqual({s for n, s in states if n == ONE}, {"done"})
        self.assertEqual({s for n, s in states if n == FALLBACK_NUMBER}, {"pending"})
        self.assertEqual(len(convs), 2)

    def test_bad_files_are_configuration_errors(self):
        good = [(ONE, self.tok[ONE])]
        cases = [
            ("mode 0644", dk.tokens_file(self.dir, good, mode=0o644, name="a"),
             "every user"),
            ("three fields", dk.tokens_file(self.dir, good + [("1", "a b")], name="b"),
             "line 3: more than two fields"),
            ("twice", dk.tokens_file(self.dir, good + good, name="c"), "lines 2 and 3"),
            ("missing", self.dir + "/nothing-here", "cannot open"),
        ]
        for what, path, want in cases:
            r = dk.run(pg, self.g, WAHOOK_ACCESS_TOKENS_FILE=path)
            self.assertEqual(r.rc, 2, (what, r))
            self.assertIn("WAHOOK_ACCESS_TOKENS_FILE", r.err, what)
            self.assertIn(want, r.err, what)
            for t in self.tok.values():
                self.assertNotIn(t, r.err, what)
        self.assertEqual(self.g.snapshot(), [])
