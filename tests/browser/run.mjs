// The browser test of the gateway's gRPC-web (`make test-browser`).
//
// Prepares the page (npm ci when the lock file changed, TypeScript generated
// from proto/ with buf, type check, esbuild bundle), serves it from its own
// localhost origin, starts `rapport serve all` on a fresh database with that
// origin allowed by the gateway's CORS, and opens the page in headless
// Chromium once per wire format (binary gRPC-web, grpc-web-text). Each run
// of the page creates, reads, fails to create and watches contacts (see
// src/app.ts); this script checks what the page reports.
//
// Usage: tests/browser/run.sh [--smoke] [--keep-db]
//   --smoke    check the tooling, Chromium and the page without a gateway:
//              the page runs against a closed port and every call must fail
//              cleanly (no database, no rapport)
//   --keep-db  do not drop the test database (its URL is printed)
//
// Environment:
//   RAPPORT_BIN          the rapport binary (default $CARGO_TARGET_DIR/debug/rapport,
//                        CARGO_TARGET_DIR defaulting to ~/.cache/rapport/target)
//   DATABASE_URL         PostgreSQL to create the test database in
//                        (default postgres://postgres@127.0.0.1:5432/postgres)
//   CHROMIUM_PATH        the browser (default /usr/bin/chromium, installed by
//                        scripts/ensure-chromium.sh when missing)
//   BROWSER_TEST_TIMEOUT seconds to wait for rapport to start and for each page
//                        run to finish (default 60)

import { execFile as execFileCallback, spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { homedir, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const execFile = promisify(execFileCallback);

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, "../..");
const TOOLS = join(ROOT, "tools");
const BUF = join(TOOLS, "node_modules/.bin/buf");
const MODES = ["binary", "text"];
const EXPECTED_CONTENT_TYPE = {
  binary: /^application\/grpc-web(\+proto)?$/,
  text: /^application\/grpc-web-text(\+proto)?$/,
};
const TIMEOUT_MS = Number(process.env.BROWSER_TEST_TIMEOUT ?? 60) * 1000;
// The test mints development tokens and runs `rapport serve all` without a
// configured key: the development mode allows both (never in production).
process.env.RAPPORT_DEV_MODE = "true";
const STOP_TIMEOUT_MS = 30_000;
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

const args = new Set(process.argv.slice(2));
for (const arg of args) {
  if (!["--smoke", "--keep-db"].includes(arg)) {
    console.error(`browser-test: unknown argument ${arg}; usage: tests/browser/run.sh [--smoke] [--keep-db]`);
    process.exit(2);
  }
}
const SMOKE = args.has("--smoke");
const KEEP_DB = args.has("--keep-db");

/** A failure with a message meant for the person running the test. */
class TestFailure extends Error {}

function fail(message) {
  throw new TestFailure(message);
}

function log(message) {
  console.error(`browser-test: ${message}`);
}

// Cleanup actions, run last-in first-out whatever happens. Every caller
// (the end of main, a signal) waits for the same one pass.
const cleanups = [];
let cleaning;
function cleanup() {
  cleaning ??= (async () => {
    while (cleanups.length > 0) {
      const action = cleanups.pop();
      try {
        await action();
      } catch (err) {
        log(`cleanup: ${err.message}`);
      }
    }
  })();
  return cleaning;
}
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(signal, () => {
    log(`${signal}: cleaning up`);
    cleanup().finally(() => process.exit(130));
  });
}

// ------------------------------------------------------------ tooling ---

function sha256(path) {
  return createHash("sha256").update(readFileSync(path)).digest("hex");
}

async function run(command, commandArgs, options = {}) {
  try {
    return await execFile(command, commandArgs, { maxBuffer: 64 * 1024 * 1024, ...options });
  } catch (err) {
    const output = [err.stdout, err.stderr].filter(Boolean).join("\n").trim();
    fail(`${command} ${commandArgs.join(" ")} failed (${err.code ?? err.signal}):\n${output}`);
  }
}

/** `npm ci` in `dir` unless node_modules was installed from this exact lock file. */
async function ensureNodeModules(dir, { fallbackToInstall = false } = {}) {
  const stamp = join(dir, "node_modules/.rapport-lock-sha256");
  const lockFile = join(dir, "package-lock.json");
  if (existsSync(stamp) && readFileSync(stamp, "utf8") === sha256(lockFile)) return;
  log(`npm ci in ${dir}`);
  const npmArgs = ["--no-audit", "--no-fund", "--prefix", dir];
  try {
    await run("npm", ["ci", ...npmArgs]);
  } catch (err) {
    // tools/: the npm registry reachable here lacks some of @bufbuild/buf's
    // optional per-platform packages, which the lock file therefore does not
    // list, and `npm ci` refuses such a lock file. `npm install` with the
    // same lock file installs the same pinned versions and leaves it as is.
    if (!fallbackToInstall) throw err;
    log(`npm ci failed; installing ${dir} with npm install from the same lock file`);
    await run("npm", ["install", "--no-save", ...npmArgs]);
  }
  writeFileSync(stamp, sha256(lockFile));
}

async function ensureChromium() {
  const script = join(ROOT, "scripts/ensure-chromium.sh");
  const child = spawn(script, [], { stdio: ["ignore", "pipe", "inherit"] });
  let stdout = "";
  child.stdout.on("data", (chunk) => (stdout += chunk));
  const code = await new Promise((resolveExit) => child.on("close", resolveExit));
  if (code !== 0) fail("Chromium is not available (see scripts/ensure-chromium.sh above)");
  return stdout.trim();
}

async function buildPage() {
  await ensureNodeModules(HERE);
  await ensureNodeModules(TOOLS, { fallbackToInstall: true });
  log("generating TypeScript from proto/ (buf generate)");
  await run(BUF, ["generate"], { cwd: HERE });
  log("type-checking src/ (tsc)");
  await run(join(HERE, "node_modules/.bin/tsc"), ["-p", join(HERE, "tsconfig.json")]);
  log("bundling src/app.ts (esbuild)");
  const esbuild = await import("esbuild");
  await esbuild.build({
    entryPoints: [join(HERE, "src/app.ts")],
    outfile: join(HERE, "dist/app.js"),
    bundle: true,
    format: "esm",
    target: "chrome120",
    sourcemap: "inline",
    logLevel: "warning",
  });
}

// ------------------------------------------------------- page server ---

async function startPageServer() {
  const files = {
    "/": { path: join(HERE, "index.html"), type: "text/html; charset=utf-8" },
    "/app.js": { path: join(HERE, "dist/app.js"), type: "text/javascript; charset=utf-8" },
  };
  const server = createServer((request, response) => {
    const file = files[new URL(request.url ?? "/", "http://page").pathname];
    if (request.method !== "GET" || file === undefined) {
      response.writeHead(404).end();
      return;
    }
    response.writeHead(200, { "content-type": file.type, "cache-control": "no-store" });
    response.end(readFileSync(file.path));
  });
  await new Promise((resolveListen) => server.listen(0, "127.0.0.1", resolveListen));
  cleanups.push(() => new Promise((resolveClose) => server.close(resolveClose)));
  return `http://127.0.0.1:${server.address().port}`;
}

/** A localhost URL nothing listens on (the port was free a moment ago). */
async function closedPortUrl() {
  const server = createServer();
  await new Promise((resolveListen) => server.listen(0, "127.0.0.1", resolveListen));
  const { port } = server.address();
  await new Promise((resolveClose) => server.close(resolveClose));
  return `http://127.0.0.1:${port}`;
}

// ----------------------------------------------------------- database ---

async function createDatabase() {
  const baseUrl = process.env.DATABASE_URL || "postgres://postgres@127.0.0.1:5432/postgres";
  const { default: pg } = await import("pg");
  const name = `rapport_browser_${randomBytes(6).toString("hex")}`;
  const admin = new pg.Client({ connectionString: baseUrl, connectionTimeoutMillis: 10_000 });
  try {
    await admin.connect();
    await admin.query(`CREATE DATABASE ${name}`);
  } catch (err) {
    fail(`cannot create a test database through ${maskUrl(baseUrl)}: ${err.message} (set DATABASE_URL)`);
  } finally {
    await admin.end().catch(() => {});
  }
  const url = new URL(baseUrl);
  url.pathname = `/${name}`;
  if (KEEP_DB) {
    log(`keeping the test database: ${maskUrl(url.href)}`);
  } else {
    cleanups.push(async () => {
      const dropper = new pg.Client({ connectionString: baseUrl, connectionTimeoutMillis: 10_000 });
      await dropper.connect();
      try {
        await dropper.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await dropper.end();
      }
    });
  }
  return url.href;
}

function maskUrl(url) {
  return url.replace(/\/\/([^:/@]*):[^@/]*@/, "//$1:***@");
}

// ------------------------------------------------------------ rapport ---

function rapportBin() {
  const targetDir = process.env.CARGO_TARGET_DIR || join(homedir(), ".cache/rapport/target");
  const bin = process.env.RAPPORT_BIN || join(targetDir, "debug/rapport");
  if (!existsSync(bin)) {
    fail(`no rapport binary at ${bin}: build it with \`cargo build -p rapport --locked\` (same CARGO_TARGET_DIR) or set RAPPORT_BIN`);
  }
  return bin;
}

async function devToken(bin) {
  const { stdout } = await run(bin, ["dev-token", "--role", "admin", "--subject", "browser-test"]);
  const token = stdout.trim();
  if (!/^[\w-]+\.[\w-]+\.[\w-]+$/.test(token)) fail(`rapport dev-token printed no JWT: ${JSON.stringify(stdout)}`);
  return token;
}

/** Starts `rapport serve all`; resolves with the gateway's base URL once it printed it. */
async function startRapport(bin, databaseUrl, pageOrigin) {
  const env = {
    ...process.env,
    DATABASE_URL: databaseUrl,
    GATEWAY_ADDR: "127.0.0.1:0",
    CONTACTS_ADDR: "127.0.0.1:0",
    GATEWAY_METRICS_ADDR: "127.0.0.1:0",
    CONTACTS_METRICS_ADDR: "127.0.0.1:0",
    PIPELINE_ADDR: "127.0.0.1:0",
    PIPELINE_METRICS_ADDR: "127.0.0.1:0",
    GATEWAY_CORS_ORIGINS: pageOrigin,
    NO_COLOR: "1", // its log lines are shown on failure
  };
  const child = spawn(bin, ["serve", "all"], { env, stdio: ["ignore", "pipe", "pipe"] });
  const output = []; // every line, stdout and stderr, for the failure report
  const exited = new Promise((resolveExit) =>
    child.on("exit", (code, signal) => resolveExit({ code, signal })),
  );
  let exitStatus;
  exited.then((status) => (exitStatus = status));

  cleanups.push(async () => {
    if (exitStatus !== undefined) return;
    child.kill("SIGTERM");
    let timer;
    const status = await Promise.race([
      exited,
      new Promise((resolveTimeout) => (timer = setTimeout(resolveTimeout, STOP_TIMEOUT_MS))),
    ]);
    clearTimeout(timer);
    if (status === undefined) {
      log(`rapport did not stop within ${STOP_TIMEOUT_MS / 1000}s of SIGTERM; killing it`);
      child.kill("SIGKILL");
      await exited;
    } else if (status.code !== 0) {
      log(`rapport exited with ${status.code ?? status.signal} after SIGTERM; its last output:`);
      printTail(output);
    }
  });
  process.on("exit", () => {
    if (exitStatus === undefined) child.kill("SIGKILL");
  });

  const lines = (stream, name) => {
    let partial = "";
    stream.setEncoding("utf8");
    stream.on("data", (chunk) => {
      partial += chunk;
      const complete = partial.split("\n");
      partial = complete.pop();
      for (const line of complete) output.push({ stream: name, line });
      for (const line of complete) stream.emit("line", line);
    });
  };
  lines(child.stdout, "stdout");
  lines(child.stderr, "stderr");

  const gateway = await new Promise((resolveGateway, rejectGateway) => {
    const timer = setTimeout(
      () =>
        rejectGateway(
          new TestFailure(
            `rapport printed no \`gateway  grpc://ADDRESS ...\` line within ${TIMEOUT_MS / 1000}s ` +
              "(is the gateway part of `rapport serve all`?)",
          ),
        ),
      TIMEOUT_MS,
    );
    child.stdout.on("line", (line) => {
      const match = /^gateway\s+grpc:\/\/(\S+)/.exec(line);
      if (match) {
        clearTimeout(timer);
        resolveGateway(match[1]);
      }
    });
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      rejectGateway(new TestFailure(`rapport serve all exited (${code ?? signal}) before printing the gateway's address`));
    });
    child.on("error", (err) => {
      clearTimeout(timer);
      rejectGateway(new TestFailure(`cannot start ${bin}: ${err.message}`));
    });
  }).catch((err) => {
    printTail(output);
    throw err;
  });
  const address = gateway.replace(/^0\.0\.0\.0:/, "127.0.0.1:").replace(/^\[::\]:/, "127.0.0.1:");
  return { url: `http://${address}`, output };
}

function printTail(output, count = 60) {
  const tail = output.slice(-count);
  if (tail.length === 0) return;
  console.error(`---- rapport output (last ${tail.length} lines) ----`);
  for (const { stream, line } of tail) console.error(`${stream === "stderr" ? "!" : " "} ${line}`);
  console.error("----");
}

// ------------------------------------------------------------ browser ---

async function launchBrowser(executablePath) {
  const { chromium } = await import("playwright-core");
  const userDataDir = mkdtempSync(join(tmpdir(), "rapport-browser-"));
  const launching = chromium.launchPersistentContext(userDataDir, {
    executablePath,
    headless: true,
    args: CHROMIUM_ARGS,
    // Our own signal handlers close the browser with everything else;
    // Playwright's would exit the process before the database is dropped.
    handleSIGINT: false,
    handleSIGTERM: false,
    handleSIGHUP: false,
  });
  cleanups.push(async () => {
    // A signal may arrive while Chromium is still starting: let it finish
    // starting, then close it, then remove its profile.
    const context = await launching.catch(() => undefined);
    await context?.close();
    rmSync(userDataDir, { recursive: true, force: true });
  });
  return await launching;
}

/** Opens the page in `mode`; returns its result object and what the console said. */
async function runPage(context, pageOrigin, gateway, token, mode) {
  const page = await context.newPage();
  const messages = [];
  page.on("console", (message) => {
    if (["error", "warning"].includes(message.type())) messages.push(`console.${message.type()}: ${message.text()}`);
  });
  page.on("pageerror", (err) => messages.push(`page error: ${err.message}`));
  page.on("requestfailed", (request) =>
    messages.push(`request failed: ${request.method()} ${request.url()}: ${request.failure()?.errorText}`),
  );
  const url = new URL(pageOrigin);
  url.search = new URLSearchParams({ gateway, token, mode }).toString();
  try {
    await page.goto(url.href);
    await page.waitForFunction(() => document.body.dataset.done === "true", null, { timeout: TIMEOUT_MS });
    const text = await page.textContent("#result");
    return { result: JSON.parse(text ?? "null"), messages };
  } catch (err) {
    const partial = await page.textContent("#result").catch(() => null);
    return { result: null, messages, error: `${err.message.split("\n")[0]}${partial ? `\npartial result: ${partial}` : ""}` };
  } finally {
    await page.close().catch(() => {});
  }
}

// ----------------------------------------------------------- checking ---

const STEPS = ["create", "get", "invalid", "watch"];

/** Checks one page run; returns the lines of failure (empty when it passed). */
function checkRun(mode, run) {
  if (run.error) return [`the page did not finish: ${run.error}`];
  const { result } = run;
  const failures = [];
  if (result === null || typeof result !== "object") return ["the page wrote no result"];
  if (result.error) failures.push(`page error: ${result.error}`);
  for (const name of STEPS) {
    const stepResult = result.steps?.[name];
    if (!stepResult) {
      failures.push(`${name}: did not run`);
    } else if (!stepResult.ok) {
      failures.push(...stepResult.problems.map((problem) => `${name}: ${problem}`));
    }
  }
  const wrongTypes = (result.responses ?? []).filter(
    (response) => !EXPECTED_CONTENT_TYPE[mode].test(response.replace(/^\d+ /, "")),
  );
  if (wrongTypes.length > 0 || (result.responses ?? []).length === 0) {
    failures.push(`responses were not ${EXPECTED_CONTENT_TYPE[mode]}: ${JSON.stringify(result.responses)}`);
  }
  return failures;
}

/** In --smoke mode every call must fail the way a missing server fails. */
function checkSmokeRun(run) {
  if (run.error) return [`the page did not finish: ${run.error}`];
  const { result } = run;
  const failures = [];
  if (result?.error) failures.push(`page error: ${result.error}`);
  for (const name of ["create", "invalid"]) {
    const stepResult = result?.steps?.[name];
    const code = stepResult?.error?.code ?? stepResult?.observed?.code;
    if (code === undefined) failures.push(`${name}: expected a connection error, got ${JSON.stringify(stepResult)}`);
  }
  return failures;
}

function hints(failures) {
  const text = failures.join("\n");
  const lines = [];
  if (/Failed to fetch|missing trailer|CORS|Unavailable|Unknown/i.test(text)) {
    lines.push(
      "hints: a call the browser could not complete usually means CORS: the gateway must answer the preflight",
      "  for the page's origin (GATEWAY_CORS_ORIGINS), allow the request headers authorization, content-type,",
      "  x-grpc-web, x-user-agent and grpc-timeout, and expose grpc-status, grpc-message and",
      "  grpc-status-details-bin; and it must accept HTTP/1.1 (tonic's accept_http1) with tonic-web.",
    );
  }
  return lines;
}

// --------------------------------------------------------------- main ---

async function main() {
  const chromiumPath = await ensureChromium();
  await buildPage();
  const pageOrigin = await startPageServer();
  log(`page served at ${pageOrigin}`);

  let gateway;
  let token;
  let rapportOutput = [];
  if (SMOKE) {
    gateway = await closedPortUrl();
    token = "smoke";
    log(`--smoke: no rapport; the page calls ${gateway}, where nothing listens`);
  } else {
    const bin = rapportBin();
    token = await devToken(bin);
    const databaseUrl = await createDatabase();
    log(`starting ${bin} serve all (database ${maskUrl(databaseUrl)})`);
    const rapport = await startRapport(bin, databaseUrl, pageOrigin);
    gateway = rapport.url;
    rapportOutput = rapport.output;
    log(`gateway at ${gateway}`);
  }

  const context = await launchBrowser(chromiumPath);
  log(`Chromium ${context.browser()?.version() ?? ""} started`);

  let failed = false;
  for (const mode of MODES) {
    const pageRun = await runPage(context, pageOrigin, gateway, token, mode);
    const failures = SMOKE ? checkSmokeRun(pageRun) : checkRun(mode, pageRun);
    if (failures.length === 0) {
      console.log(`ok     - ${mode}: ${SMOKE ? "page ran, calls failed cleanly" : STEPS.join(", ")}`);
      if (SMOKE) {
        for (const name of ["create", "invalid"]) {
          const stepResult = pageRun.result.steps[name];
          console.log(`         ${name}: ${stepResult.error?.code ?? stepResult.observed.code}: ${stepResult.error?.message ?? stepResult.observed.message}`);
        }
      }
      if (!SMOKE) {
        const { steps } = pageRun.result;
        console.log(`         created ${steps.create.observed.id}; violation on ${steps.invalid.observed.field_violations.map((v) => v.field).join(", ")}; watch event #${steps.watch.observed.event_sequence}`);
      }
    } else {
      failed = true;
      console.log(`FAILED - ${mode}:`);
      for (const failure of failures) console.log(`         ${failure.replaceAll("\n", "\n         ")}`);
      for (const hint of hints(failures)) console.log(`         ${hint}`);
      if (pageRun.result) console.log(`         page result: ${JSON.stringify(pageRun.result).slice(0, 4000)}`);
    }
    // On success, the page's own cancellation of the watch stream is not news.
    const messages =
      failures.length > 0 ? pageRun.messages : pageRun.messages.filter((message) => !message.includes("net::ERR_ABORTED"));
    if (messages.length > 0 && (failures.length > 0 || !SMOKE)) {
      console.log(`         browser console (${mode}):`);
      for (const message of messages) console.log(`           ${message}`);
    }
  }
  if (failed && rapportOutput.length > 0) printTail(rapportOutput);
  return failed ? 1 : 0;
}

let exitCode = 1;
try {
  exitCode = await main();
} catch (err) {
  if (err instanceof TestFailure) {
    console.log(`FAILED - ${err.message}`);
  } else {
    console.log(`FAILED - ${err.stack ?? err}`);
  }
  exitCode = 1;
} finally {
  await cleanup();
}
console.log(exitCode === 0 ? "browser test passed" : "browser test failed");
process.exit(exitCode);
