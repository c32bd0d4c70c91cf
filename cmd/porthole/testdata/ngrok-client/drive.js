// Drives Porthole's agent API with the ngrok package's own API client
// (installed without its binary) and prints what it saw as one JSON line.
// Usage: node drive.js INSPECTOR_URL UPSTREAM_ADDR
const { NgrokClient } = require("ngrok");

async function main() {
  const [url, upstream] = process.argv.slice(2);
  const api = new NgrokClient(url);
  const out = {};

  out.listed = (await api.listTunnels()).tunnels.map((t) => t.public_url);

  const started = await api.startTunnel({ name: "from-node", addr: upstream, proto: "http", subdomain: "fromnode" });
  out.started = started.public_url;
  out.detail = (await api.tunnelDetail("from-node")).public_url;

  const list = await api.listRequests({ limit: 10, tunnel_name: "command_line" });
  const id = list.requests[0].id;
  out.replayed = await api.replayRequest(id);
  const detail = await api.requestDetail(id);
  out.raw = Buffer.from(detail.request.raw, "base64").toString();

  out.stopped = await api.stopTunnel("from-node");
  try {
    await api.tunnelDetail("from-node");
  } catch (e) {
    out.missing = { name: e.name, msg: e.message, error_code: e.body.error_code, status_code: e.body.status_code };
  }
  out.cleared = await api.deleteAllRequests();
  out.left = (await api.listRequests()).requests.length;
  console.log(JSON.stringify(out));
}

main().catch((e) => {
  console.error(e.body || e);
  process.exit(1);
});
