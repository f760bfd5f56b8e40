-- scripts/pipeline.lua: HTTP pipelining for wrk, as in wrk's own
-- scripts/pipeline.lua example. Each write carries DEPTH requests (default 16)
-- concatenated with wrk.format; wrk reads all DEPTH responses before it
-- writes again, so DEPTH requests are in flight per connection.
--   wrk -t1 -c64 -d5s -s scripts/pipeline.lua http://127.0.0.1:8080/ -- 16

init = function(args)
   local depth = tonumber(args[1]) or 16
   local r = {}
   for i = 1, depth do
      r[i] = wrk.format()
   end
   req = table.concat(r)
end

request = function()
   return req
end
