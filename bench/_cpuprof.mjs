// A CPU profile of a service process for `bench/apply.ts --profile <dir>`, preloaded with
// NODE_OPTIONS=--import (Node 20 refuses --cpu-prof in NODE_OPTIONS). The in-thread inspector
// session answers synchronously, so the profile can be written from the 'exit' handler.
//   OVNTAP_CPUPROF=/tmp/p/ovn-applier.cpuprofile NODE_OPTIONS=--import=./bench/_cpuprof.mjs node …
import { writeFileSync } from "node:fs";
import { Session } from "node:inspector";

const out = process.env.OVNTAP_CPUPROF;
if (out) {
  const session = new Session();
  session.connect();
  session.post("Profiler.enable");
  session.post("Profiler.setSamplingInterval", { interval: 500 });
  session.post("Profiler.start");
  process.on("exit", () => {
    session.post("Profiler.stop", (err, res) => {
      if (!err) writeFileSync(out, JSON.stringify(res.profile));
    });
  });
}
