// Entry point of the page: start the app and report a failed start on the page itself.
import {app} from "./app.js";

app.setup().catch((e) => {
  console.error("Diffgraph failed to start", e);
  const box = document.createElement("div");
  box.className = "fatal";
  box.textContent = `The editor could not start: ${e.message}`;
  document.body.append(box);
});
