-- post.lua - wrk script for `make bench`: every request is a distinct, correctly
-- signed webhook. wrk's LuaJIT has no HMAC, so bench.py precomputes the bodies and
-- their X-Hub-Signature-256 into fixed-length records (one file, RECLEN bytes each:
-- 64 hex digest, 6-digit body length, the body, space padding); each wrk thread
-- reads its own contiguous slice, so no id is ever posted twice.
--
-- args: FILE RECLEN FIRST PER_THREAD [WRAP]
--   thread t posts records FIRST + t*PER_THREAD ... + PER_THREAD - 1; when its slice
--   runs out it stops (and posts a harmless GET, counted apart, while it stops),
--   or with WRAP=1 (the null responder, which stores nothing) starts it over.
-- BENCH_PACE_MS in the environment > 0 makes each connection wait that long
--   between an answer and its next request (wrk's delay() hook): the half-rate run.
-- done() prints one JSON line: "BENCH {...}" with the figures bench.py reads.

local threads, nthreads = {}, 0

function setup(thread)
	thread:set("tid", nthreads)
	nthreads = nthreads + 1
	table.insert(threads, thread)
end

local f, reclen, left, per, wrap, origin
-- globals, not locals: done() reads them from each thread with thread:get()
sent, ok, other, exhausted = 0, 0, 0, 0

function init(args)
	local file, first = args[1], tonumber(args[3])
	reclen, per, wrap = tonumber(args[2]), tonumber(args[4]), args[5] == "1"
	left = per
	origin = (first + tid * per) * reclen
	f = assert(io.open(file, "rb"))
	assert(f:seek("set", origin))
end

function request()
	if left == 0 and wrap then
		left = per
		assert(f:seek("set", origin))
	end
	if left == 0 then
		exhausted = 1
		wrk.thread:stop()
		return wrk.format("GET", "/webhook?bench=exhausted")
	end
	left = left - 1
	local rec = f:read(reclen)
	local sig, n = rec:sub(1, 64), tonumber(rec:sub(65, 70))
	sent = sent + 1
	return wrk.format("POST", "/webhook", {
		["Content-Type"] = "application/json",
		["X-Hub-Signature-256"] = "sha256=" .. sig,
	}, rec:sub(71, 70 + n))
end

local pace = tonumber(os.getenv("BENCH_PACE_MS") or "0")
if pace > 0 then
	function delay()
		return pace
	end
end

function response(status, headers, body)
	if status == 200 then
		ok = ok + 1
	else
		other = other + 1
	end
end

function done(summary, latency, requests)
	local s, o, x, e = 0, 0, 0, 0
	for _, t in ipairs(threads) do
		s = s + (t:get("sent") or 0)
		o = o + (t:get("ok") or 0)
		x = x + (t:get("other") or 0)
		e = e + (t:get("exhausted") or 0)
	end
	local er = summary.errors
	io.write(string.format('BENCH {"duration_us":%d,"requests":%d,"sent":%d,' ..
		'"ok":%d,"other":%d,"exhausted":%d,"err_connect":%d,"err_read":%d,' ..
		'"err_write":%d,"err_status":%d,"err_timeout":%d,"p50_us":%d,' ..
		'"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f}\n',
		summary.duration, summary.requests, s, o, x, e, er.connect, er.read,
		er.write, er.status, er.timeout, latency:percentile(50),
		latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
