-- wrk script: small dyndbg queries against POST /control, cycling through
-- bodies that flip `p` on one function's sites (a commit and one
-- rendezvous each) and that only change decorations (no rendezvous).
--   wrk -t2 -c16 -d20s --latency -s benches/load/queries.lua http://127.0.0.1:7070
local bodies = {
  "func virtio_net_rx_poll +p",
  "func virtio_net_rx_poll -p",
  "module i915 func i915_ring_init +mf",
  "module i915 func i915_ring_init -mf",
  "func amdgpu_vm_update +p",
  "func amdgpu_vm_update -p",
}
local n = 0
request = function()
  n = n + 1
  return wrk.format("POST", "/control", { ["Content-Type"] = "text/plain" }, bodies[(n % #bodies) + 1])
end
