"""The ERP client test: `rapport serve all` on a fresh database, sales winning
deals through the gateway, and erp_client.py (an accounting system on grpcio
stubs generated from proto/ now) booking the orders they become, crashing
mid-order and being killed, and resuming from its saved cursor.

Passes when every order is acknowledged once under the ERP's reference,
has exactly one invoice, exactly two payments, and is PAID; and the change
feed shows no payment booked twice.
"""

import datetime
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid

# The test mints development tokens and runs `rapport serve all` without a
# configured key: the development mode allows both (never in production).
os.environ["RAPPORT_DEV_MODE"] = "true"

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
WAIT = 60  # seconds any one condition may take before the test fails


def log(message):
    print(f"erp-test: {message}", flush=True)


def fail(message):
    log(f"FAILED: {message}")
    sys.exit(1)


def generate_stubs(directory):
    from grpc_tools import protoc
    import importlib.resources
    include = str(importlib.resources.files("grpc_tools") / "_proto")
    proto_root = os.path.join(ROOT, "proto")
    files = []
    for folder, _, names in os.walk(os.path.join(proto_root, "rapport")):
        files += [os.path.relpath(os.path.join(folder, name), proto_root) for name in names if name.endswith(".proto")]
    code = protoc.main(["protoc", f"-I{proto_root}", f"-I{include}", f"--python_out={directory}",
                        f"--grpc_python_out={directory}", *sorted(files)])
    if code != 0:
        fail("protoc could not generate the stubs from proto/")
    sys.path.insert(0, directory)


def psql(database_url, statement):
    subprocess.run(["psql", database_url, "-v", "ON_ERROR_STOP=1", "-q", "-c", statement], check=True,
                   stdout=subprocess.DEVNULL)


def with_database(url, name):
    base, _, query = url.partition("?")
    scheme, _, rest = base.partition("://")
    authority = rest.split("/", 1)[0]
    return f"{scheme}://{authority}/{name}" + (f"?{query}" if query else "")


def wait_for(what, condition):
    deadline = time.monotonic() + WAIT
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            fail(f"timed out waiting for {what}")
        time.sleep(0.05)


class Rapport:
    """`rapport serve all` on its own database, with every address on port 0."""

    def __init__(self, binary, database_url, keys_file):
        env = dict(os.environ, DATABASE_URL=database_url, API_KEYS_FILE=keys_file, NO_COLOR="1",
                   GATEWAY_ADDR="127.0.0.1:0", GATEWAY_METRICS_ADDR="off",
                   CONTACTS_ADDR="127.0.0.1:0", CONTACTS_METRICS_ADDR="off",
                   PIPELINE_ADDR="127.0.0.1:0", PIPELINE_METRICS_ADDR="off", WATCH_HEARTBEAT="500ms")
        self.process = subprocess.Popen([binary, "serve", "all"], env=env, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True)
        self.output = []
        self.gateway = None
        found = threading.Event()

        def read():
            for line in self.process.stdout:
                self.output.append(line.rstrip())
                match = re.match(r"gateway\s+grpc://(\S+)", line)
                if match:
                    self.gateway = match.group(1)
                    found.set()
            found.set()

        threading.Thread(target=read, daemon=True).start()
        if not found.wait(WAIT) or self.gateway is None:
            self.stop()
            fail("rapport serve all did not print the gateway's address:\n" + "\n".join(self.output[-40:]))

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()


class Sales:
    """A sales rep's front end: creates a company and wins deals."""

    def __init__(self, channel, token):
        from rapport.contacts.v1 import contacts_pb2, contacts_pb2_grpc
        from rapport.pipeline.v1 import deals_pb2, deals_pb2_grpc
        from rapport.common.v1 import money_pb2
        self.contacts_pb, self.deals_pb, self.money_pb = contacts_pb2, deals_pb2, money_pb2
        self.contacts = contacts_pb2_grpc.ContactServiceStub(channel)
        self.deals = deals_pb2_grpc.DealServiceStub(channel)
        self.metadata = (("authorization", f"Bearer {token}"),)
        company = self.contacts.CreateCompany(
            contacts_pb2.CreateCompanyRequest(company=contacts_pb2.Company(name="Acme", domain="acme.example")),
            metadata=self.metadata, timeout=10)
        self.company_id = company.id

    def win_deal(self, title, minor_units):
        deal = self.deals.CreateDeal(self.deals_pb.CreateDealRequest(
            deal=self.deals_pb.Deal(title=title, currency_code="EUR", company_id=self.company_id,
                                    amount=self.money_pb.Money(currency_code="EUR", minor_units=minor_units)),
            request_id=str(uuid.uuid4())), metadata=self.metadata, timeout=10)
        won = self.deals.WinDeal(self.deals_pb.WinDealRequest(id=deal.id), metadata=self.metadata, timeout=10)
        if not won.order_id:
            fail(f"winning {title} created no order")
        return won.order_id


class Erp:
    """Runs erp_client.py as a separate process, as an ERP connector runs."""

    def __init__(self, gateway, api_key, workdir, stubs):
        self.arguments = [sys.executable, os.path.join(HERE, "erp_client.py"), "--gateway", gateway,
                          "--api-key", api_key, "--state", os.path.join(workdir, "cursor.json"),
                          "--stubs", stubs, "--journal", os.path.join(workdir, "journal.txt")]
        self.journal_path = os.path.join(workdir, "journal.txt")
        self.process = None

    def start(self, crash_after=None):
        arguments = self.arguments + (["--crash-after", str(crash_after)] if crash_after else [])
        self.process = subprocess.Popen(arguments)

    def journal(self):
        try:
            with open(self.journal_path, encoding="utf-8") as file:
                return file.read().splitlines()
        except FileNotFoundError:
            return []

    def done(self):
        return {line.split()[1] for line in self.journal() if line.startswith("done ")}

    def kill(self):
        self.process.kill()
        self.process.wait()


def check_books(channel, api_key, order_ids):
    from rapport.pipeline.v1 import orders_pb2, orders_pb2_grpc
    from rapport.pipeline.v1 import pipelines_pb2, pipelines_pb2_grpc
    orders = orders_pb2_grpc.OrderServiceStub(channel)
    metadata = (("x-api-key", api_key),)
    problems = []
    for order_id in order_ids:
        order = orders.GetOrder(orders_pb2.GetOrderRequest(id=order_id), metadata=metadata, timeout=10)
        if order.status != orders_pb2.ORDER_STATUS_ACKNOWLEDGED or order.external_ref != f"SO-{order_id}":
            problems.append(f"order {order_id}: {orders_pb2.OrderStatus.Name(order.status)} {order.external_ref!r}")
        invoices = orders.ListInvoices(orders_pb2.ListInvoicesRequest(filter=f'order_id = "{order_id}"'),
                                       metadata=metadata, timeout=10).invoices
        if len(invoices) != 1:
            problems.append(f"order {order_id}: {len(invoices)} invoices, expected 1")
            continue
        invoice = invoices[0]
        if invoice.status != orders_pb2.INVOICE_STATUS_PAID or invoice.paid_amount.minor_units != order.total.minor_units:
            problems.append(f"invoice {invoice.number}: {orders_pb2.InvoiceStatus.Name(invoice.status)}, "
                            f"paid {invoice.paid_amount.minor_units} of {order.total.minor_units}")
        payments = orders.ListPayments(orders_pb2.ListPaymentsRequest(invoice_id=invoice.id), metadata=metadata,
                                       timeout=10).payments
        refs = sorted(payment.external_ref for payment in payments)
        if refs != [f"PAY-{order_id}-1", f"PAY-{order_id}-2"]:
            problems.append(f"invoice {invoice.number}: payments {refs}")
    # The feed: one CREATED event per payment, never two for one reference.
    feed = pipelines_pb2_grpc.PipelineServiceStub(channel)
    payments_seen = {}
    request = pipelines_pb2.WatchChangesRequest(resource_types=["rapport.pipeline.v1.Payment"])
    stream = feed.WatchChanges(request, metadata=metadata, timeout=10)
    for message in stream:
        if message.WhichOneof("event") == "heartbeat":
            break
        payment = orders_pb2.Payment()
        message.change.resource.Unpack(payment)
        payments_seen[payment.external_ref] = payments_seen.get(payment.external_ref, 0) + 1
    stream.cancel()
    twice = {ref: count for ref, count in payments_seen.items() if count != 1}
    if twice or len(payments_seen) != 2 * len(order_ids):
        problems.append(f"payment events: {len(payments_seen)} references, repeated {twice}")
    return problems


def main():
    binary = os.environ.get("RAPPORT_BIN") or os.path.join(
        os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/rapport/target")), "debug", "rapport")
    if not os.path.exists(binary):
        fail(f"no rapport binary at {binary}: build it with `cargo build -p rapport --locked` or set RAPPORT_BIN")
    import grpc
    with tempfile.TemporaryDirectory(prefix="rapport-erp-") as workdir:
        stubs = os.path.join(workdir, "stubs")
        os.mkdir(stubs)
        generate_stubs(stubs)
        log("stubs generated from proto/ with grpcio-tools")

        key_output = subprocess.run([binary, "api-key", "--subject", "erp-test", "--role", "integration"],
                                    check=True, capture_output=True, text=True).stdout.splitlines()
        api_key = next(line for line in key_output if line.startswith("rk_"))
        entry = json.loads(next(line for line in key_output if line.startswith("{")))
        keys_file = os.path.join(workdir, "api-keys.json")
        with open(keys_file, "w", encoding="utf-8") as file:
            json.dump({"keys": [entry]}, file)
        token = subprocess.run([binary, "dev-token", "--role", "sales_rep", "--subject", "rep-1"], check=True,
                               capture_output=True, text=True).stdout.strip()

        admin_url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
        name = f"rapport_erp_{uuid.uuid4().hex[:12]}"
        psql(admin_url, f"CREATE DATABASE {name}")
        rapport = None
        try:
            rapport = Rapport(binary, with_database(admin_url, name), keys_file)
            log(f"gateway at {rapport.gateway}")
            with grpc.insecure_channel(rapport.gateway) as channel:
                sales = Sales(channel, token)
                erp = Erp(rapport.gateway, api_key, workdir, stubs)
                orders = [sales.win_deal(f"Deal {n}", 10_000 + n * 1_001) for n in range(3)]
                log(f"won 3 deals: orders {', '.join(orders)}")

                # A crash in the middle of the second order: acknowledged and invoiced, not paid.
                erp.start(crash_after=7)
                if erp.process.wait(WAIT) != 137:
                    fail(f"the ERP client was to crash after its 7th call; it exited {erp.process.returncode}")
                log(f"ERP client crashed after 7 calls; done: {sorted(erp.done())}")

                # Restarted, it resumes; more orders come while it follows; then it is killed (-9) and
                # restarted again.
                erp.start()
                wait_for("the first 3 orders to be booked", lambda: set(orders) <= erp.done())
                orders += [sales.win_deal(f"Deal {n}", 20_000 + n) for n in range(3, 5)]
                wait_for("order 4 to be booked", lambda: orders[3] in erp.done())
                erp.kill()
                log("ERP client killed with SIGKILL while following the feed")
                orders.append(sales.win_deal("Deal 5", 30_000))
                erp.start()
                wait_for("every order to be booked", lambda: set(orders) <= erp.done())
                erp.kill()

                problems = check_books(channel, api_key, orders)
                if problems:
                    fail("the books are wrong:\n  " + "\n  ".join(problems) + "\njournal:\n  " + "\n  ".join(erp.journal()))
                restarts = sum(1 for line in erp.journal() if line.startswith("start after"))
                log(f"ok: {len(orders)} orders acknowledged, invoiced and paid exactly once "
                    f"across {restarts} starts of the ERP client")
        finally:
            if rapport:
                rapport.stop()
            psql(admin_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


if __name__ == "__main__":
    main()
