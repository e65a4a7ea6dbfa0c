-- wrk script: verification requests for licences of the explorer example's demo chain,
-- cycling through the numbers listed one per line in $HUTONG_NUMBERS (default numbers.txt),
-- which the example writes when started with HUTONG_EXPLORER_NUMBERS=FILE.
--
--   wrk -t2 -c32 -d20s --latency -s api/examples/verify.lua http://127.0.0.1:PORT
local numbers = {}
for line in io.lines(os.getenv("HUTONG_NUMBERS") or "numbers.txt") do
  numbers[#numbers + 1] = line
end
local index = 0
request = function()
  index = (index % #numbers) + 1
  return wrk.format("GET", "/v1/licences/business-licence/" .. numbers[index] .. "/verification?region=650100")
end
