"""An accounting system's side of the order loop, as an ERP integrator writes it.

It follows the Pipeline service's change feed through the gateway with an
API key, and for every new order:
  1. acknowledges it under the ERP's own order reference,
  2. records the invoice it issues (the invoice number is the ERP's reference),
  3. records a partial payment, then the rest.

Its only state is the feed cursor, saved (atomically) after an event is
completely handled. Killed at any point, it resumes from the saved cursor and
handles the interrupted event again; every call it makes is idempotent by its
external reference, so nothing is booked twice.

Usage: erp_client.py --gateway HOST:PORT --api-key KEY --state FILE --stubs DIR
                     [--journal FILE] [--crash-after STEP]
"""

import argparse
import datetime
import json
import os
import sys

import grpc

ORDER_TYPE = "rapport.pipeline.v1.Order"


def load_cursor(path):
    try:
        with open(path, encoding="utf-8") as file:
            return int(json.load(file)["after_sequence"])
    except FileNotFoundError:
        return 0


def save_cursor(path, sequence):
    temporary = f"{path}.tmp"
    with open(temporary, "w", encoding="utf-8") as file:
        json.dump({"after_sequence": sequence}, file)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)


def journal(path, line):
    if path:
        with open(path, "a", encoding="utf-8") as file:
            file.write(line + "\n")
            file.flush()


class Erp:
    def __init__(self, channel, api_key, stubs, crash_after, journal_path):
        self.pb = stubs["orders_pb2"]
        self.common = stubs["date_pb2"]
        self.money = stubs["money_pb2"]
        self.orders = stubs["orders_pb2_grpc"].OrderServiceStub(channel)
        self.pipelines = stubs["pipelines_pb2_grpc"].PipelineServiceStub(channel)
        self.pipelines_pb = stubs["pipelines_pb2"]
        self.metadata = (("x-api-key", api_key),)
        self.crash_after = crash_after
        self.journal_path = journal_path
        self.steps = 0

    def step(self, name, order_id):
        """Counts a completed call; simulates a crash (kill -9) after the configured one."""
        self.steps += 1
        journal(self.journal_path, f"step {self.steps} {name} {order_id}")
        if self.crash_after is not None and self.steps == self.crash_after:
            journal(self.journal_path, f"crash after step {self.steps}")
            os._exit(137)

    def handle(self, order):
        """Books one new order; safe to repeat after a crash at any point."""
        deadline = 10
        acknowledged = self.orders.AcknowledgeOrder(
            self.pb.AcknowledgeOrderRequest(id=order.id, external_ref=f"SO-{order.id}"),
            metadata=self.metadata, timeout=deadline)
        assert acknowledged.external_ref == f"SO-{order.id}", acknowledged
        self.step("acknowledged", order.id)

        today = datetime.date.today()
        due = today + datetime.timedelta(days=30)
        invoice = self.orders.RecordInvoice(
            self.pb.RecordInvoiceRequest(
                order_id=order.id,
                number=f"INV-{order.id}",
                amount=order.total,
                issue_date=self.common.Date(year=today.year, month=today.month, day=today.day),
                due_date=self.common.Date(year=due.year, month=due.month, day=due.day)),
            metadata=self.metadata, timeout=deadline)
        self.step("invoiced", order.id)

        total = invoice.amount.minor_units
        first = total // 2
        for number, amount in ((1, first), (2, total - first)):
            if amount <= 0:
                continue
            response = self.orders.RecordPayment(
                self.pb.RecordPaymentRequest(
                    invoice_id=invoice.id,
                    amount=self.money.Money(currency_code=invoice.amount.currency_code, minor_units=amount),
                    payment_date=self.common.Date(year=today.year, month=today.month, day=today.day),
                    external_ref=f"PAY-{order.id}-{number}"),
                metadata=self.metadata, timeout=deadline)
            self.step(f"paid{number}", order.id)
        journal(self.journal_path, f"done {order.id} {self.pb.InvoiceStatus.Name(response.invoice.status)}")

    def follow(self, state_path):
        cursor = load_cursor(state_path)
        journal(self.journal_path, f"start after {cursor}")
        request = self.pipelines_pb.WatchChangesRequest(after_sequence=cursor, resource_types=[ORDER_TYPE])
        for message in self.pipelines.WatchChanges(request, metadata=self.metadata):
            kind = message.WhichOneof("event")
            if kind == "heartbeat":
                # Every event up to here is handled: the heartbeat's sequence is safe to keep.
                if message.heartbeat.latest_sequence > cursor:
                    cursor = message.heartbeat.latest_sequence
                    save_cursor(state_path, cursor)
                continue
            change = message.change
            order = self.pb.Order()
            change.resource.Unpack(order)
            if order.status == self.pb.ORDER_STATUS_NEW:
                self.handle(order)
            cursor = change.sequence
            save_cursor(state_path, cursor)


def load_stubs(directory):
    sys.path.insert(0, directory)
    import importlib
    names = {
        "orders_pb2": "rapport.pipeline.v1.orders_pb2",
        "orders_pb2_grpc": "rapport.pipeline.v1.orders_pb2_grpc",
        "pipelines_pb2": "rapport.pipeline.v1.pipelines_pb2",
        "pipelines_pb2_grpc": "rapport.pipeline.v1.pipelines_pb2_grpc",
        "date_pb2": "rapport.common.v1.date_pb2",
        "money_pb2": "rapport.common.v1.money_pb2",
    }
    return {short: importlib.import_module(module) for short, module in names.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gateway", required=True)
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--state", required=True)
    parser.add_argument("--stubs", required=True)
    parser.add_argument("--journal")
    parser.add_argument("--crash-after", type=int, help="exit abruptly after this many completed calls")
    arguments = parser.parse_args()
    stubs = load_stubs(arguments.stubs)
    with grpc.insecure_channel(arguments.gateway) as channel:
        erp = Erp(channel, arguments.api_key, stubs, arguments.crash_after, arguments.journal)
        try:
            erp.follow(arguments.state)
        except grpc.RpcError as error:
            journal(arguments.journal, f"error {error.code().name}: {error.details()}")
            print(f"erp client: {error.code().name}: {error.details()}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
