-- Agent-first decision, entirely server side, repeated while the agent has free slots:
-- the first eligible waiting task of each queue (queues are kept in priority order),
-- then the best of those by effective priority (priority + aging + queue weight), then
-- age, then arrival. ARGV: aid, owner, now, scan_limit, max_takes, rid_base (reservation
-- ids are rid_base-1, rid_base-2...), then (queue, rate, weight, lease) quadruples.
return take_for_agent(ARGV[1], ARGV)
