# SPDX-License-Identifier: Apache-2.0
"""The ACLs swarmq needs, in one place, and a tool that grants them.

What the swarmq-consumer principal (User:swarmq) and the swarmq-producer
principal (User:producer) of a secured cluster (ops/kafka.sh start
--secure) need, as a list of (principal, operation, resource type, name,
pattern) built from the topic names and the group. tests/broker/0720 and
0721 grant exactly this list and take away one entry at a time; README.md
("ACLs") prints the same list with the default names (`table`).

DESIGN: confluent-kafka's AdminClient (the venv of ops/venv.sh; its own,
newer librdkafka) logs in as the cluster's super user (a librdkafka
properties file: ops/kafka.sh writes STATE/client-admin.properties).
CreateAcls and DeleteAcls wait for the brokers' answer; a KRaft cluster
applies them through its metadata log, so a client may see the change a
moment later (the tests wait on what the client does, not on time).

  acls.py table [names]                     the list, as a Markdown table
  acls.py grant   --admin FILE [names] [--only N] [--except N]
  acls.py revoke  --admin FILE [names] [--only N]
  acls.py count   [names]                   how many entries the list has
  acls.py topics  --admin FILE [names] [--partitions N]  create the topics

names: --prefix P (topics P-tasks, P-critical, P-results, P-events, P-dlt,
P-retry, P-control, P-workflows, P-schedules; default: swarmq's default
names), --group G (default swarmq), --exactly-once (adds the transactional
id entries), --workflows (adds what workflows.enable=true needs),
--schedules (adds what schedule.<name>.* keys need).
"""
import argparse
import sys


def topic_names(prefix):
    if prefix:
        return {
            "tasks": f"{prefix}-tasks", "critical": f"{prefix}-critical",
            "results": f"{prefix}-results", "events": f"{prefix}-events",
            "dlt": f"{prefix}-dlt", "retry": f"{prefix}-retry",
            "control": f"{prefix}-control",
            "workflows": f"{prefix}-workflows",
            "schedules": f"{prefix}-schedules",
        }
    return {
        "tasks": "swarmq-tasks", "critical": "swarmq-tasks-critical",
        "results": "swarmq-results", "events": "swarmq-events",
        "dlt": "swarmq-tasks-dlt", "retry": "swarmq-tasks-retry",
        "control": "swarmq-control", "workflows": "swarmq-workflows",
        "schedules": "swarmq-schedules",
    }


def owner_acls(c, topic, group, read_why, write_why, group_why, txn):
    """What instance principal c needs for a topic whose partitions' owners
    act on them (topic.workflows, topic.schedules): Read and Write on the
    topic, Read on the owners' group and, with txn (name, pattern, why:
    exactly_once), Write on the owners' transactional id(s)."""
    acls = [
        (c, "READ", "TOPIC", topic, "LITERAL", read_why),
        (c, "WRITE", "TOPIC", topic, "LITERAL", write_why),
        (c, "READ", "GROUP", group, "LITERAL", group_why),
    ]
    if txn:
        name, pattern, why = txn
        acls.append((c, "WRITE", "TRANSACTIONAL_ID", name, pattern, why))
    return acls


def swarmq_acls(prefix=None, group="swarmq", exactly_once=False,
                workflows=False, schedules=False):
    """Every ACL entry swarmq needs: (principal, operation, resource type,
    resource name, pattern type, why). Read and Write imply Describe.
    Workflows and schedules are features an instance turns on: their
    entries come after the others, so the numbering of the base list
    (--only, --except) does not depend on them."""
    t = topic_names(prefix)
    c = "User:swarmq"
    p = "User:producer"
    acls = [
        (c, "READ", "TOPIC", t["tasks"], "LITERAL",
         "consume tasks in the group"),
        (c, "READ", "TOPIC", t["critical"], "LITERAL",
         "consume the fast lane in the group"),
        (c, "READ", "TOPIC", t["retry"], "LITERAL",
         "consume retries and delayed tasks in the group"),
        (c, "READ", "GROUP", group, "LITERAL",
         "join the group, commit offsets"),
        (c, "WRITE", "TOPIC", t["results"], "LITERAL",
         "one result per task"),
        (c, "WRITE", "TOPIC", t["events"], "LITERAL",
         "lifecycle events"),
        (c, "WRITE", "TOPIC", t["retry"], "LITERAL",
         "failed attempts and delayed tasks"),
        (c, "WRITE", "TOPIC", t["dlt"], "LITERAL",
         "dead letters"),
        (c, "READ", "TOPIC", t["control"], "LITERAL",
         "cancel requests (read outside the group)"),
        (c, "WRITE", "TOPIC", t["control"], "LITERAL",
         "POST /admin/cancel (a cancel every instance reads)"),
    ]
    if exactly_once:
        acls.append((c, "WRITE", "TRANSACTIONAL_ID", f"swarmq-{group}-",
                     "PREFIXED",
                     "processing.guarantee=exactly_once: its transactions"))
    acls += [
        (p, "WRITE", "TOPIC", t["tasks"], "LITERAL",
         "swarmq-producer submit, dlt redrive (back to the task topic)"),
        (p, "WRITE", "TOPIC", t["critical"], "LITERAL",
         "swarmq-producer submit --priority CRITICAL"),
        (p, "READ", "TOPIC", t["results"], "LITERAL",
         "swarmq-producer wait, replay --results"),
        (p, "READ", "GROUP", "swarmq-producer-wait-", "PREFIXED",
         "swarmq-producer wait (a throwaway group, no commits)"),
        (p, "READ", "TOPIC", t["events"], "LITERAL",
         "swarmq-producer replay (the events, its default)"),
        (p, "READ", "TOPIC", t["dlt"], "LITERAL",
         "swarmq-producer dlt list, dlt redrive"),
        (p, "READ", "GROUP", f"swarmq-redrive-{t['dlt']}", "LITERAL",
         "swarmq-producer dlt redrive: what it sent, not sent twice"),
        (p, "WRITE", "TOPIC", t["control"], "LITERAL",
         "swarmq-producer cancel"),
    ]
    if workflows or schedules:
        why = " and ".join(w for w, on in (("workflows", workflows),
                                           ("schedules", schedules)) if on)
        acls += [
            (c, "WRITE", "TOPIC", t["tasks"], "LITERAL",
             f"{why}: submit their tasks"),
            (c, "WRITE", "TOPIC", t["critical"], "LITERAL",
             f"{why}: submit their CRITICAL tasks"),
        ]
    if workflows:
        acls += owner_acls(
            c, t["workflows"], f"{group}.workflows",
            "workflows.enable: own workflows in the group below",
            "workflows.enable: each workflow task's ending, the owner's "
            "state",
            "workflows.enable: share topic.workflows' partitions",
            exactly_once and (f"swarmq-workflows-{group}-", "PREFIXED",
                              "workflows.enable under exactly_once: the "
                              "owner's steps (one id per partition)"))
        acls += [
            (p, "WRITE", "TOPIC", t["workflows"], "LITERAL",
             "swarmq-producer workflow"),
            (p, "READ", "TOPIC", t["workflows"], "LITERAL",
             "swarmq-producer replay --workflow"),
        ]
    if schedules:
        acls += owner_acls(
            c, t["schedules"], f"{group}.schedules",
            "schedules: the last tick of each, read by their owner",
            "schedules: a tick record per firing",
            "schedules: one owner in the group fires them",
            exactly_once and (f"swarmq-schedules-{group}", "LITERAL",
                              "schedules under exactly_once: a tick and its "
                              "task in one transaction"))
    return acls


def describe(acl):
    principal, op, rtype, name, pattern, _ = acl
    kind = rtype.lower().replace("_", " ")
    star = "*" if pattern == "PREFIXED" else ""
    return f"{principal} {op.capitalize()} on {kind} {name}{star}"


def admin_client(path):
    from confluent_kafka.admin import AdminClient
    conf = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                k, v = line.split("=", 1)
                conf[k.strip()] = v.strip()
    return AdminClient(conf)


def bindings(acls, match=False):
    """The entries as AclBinding objects (CreateAcls), or with match=True
    as AclBindingFilter objects that match exactly those (DeleteAcls)."""
    from confluent_kafka import admin
    make = admin.AclBindingFilter if match else admin.AclBinding
    return [make(admin.ResourceType[rtype], name,
                 admin.ResourcePatternType[pattern], principal, "*",
                 admin.AclOperation[op], admin.AclPermissionType.ALLOW)
            for principal, op, rtype, name, pattern, _ in acls]


def wait_all(futures, what):
    bad = 0
    for binding, fut in futures.items():
        try:
            fut.result()
        except Exception as e:  # the broker's answer, named
            print(f"acls.py: {what} {binding}: {e}", file=sys.stderr)
            bad += 1
    return bad


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("command", choices=["table", "grant", "revoke", "count",
                                        "list", "topics"])
    ap.add_argument("--partitions", type=int, default=3,
                    help="topics: partitions of each topic (default 3)")
    ap.add_argument("--admin", help="librdkafka properties of a super user")
    ap.add_argument("--prefix")
    ap.add_argument("--group", default="swarmq")
    ap.add_argument("--exactly-once", action="store_true")
    ap.add_argument("--workflows", action="store_true",
                    help="add what workflows.enable=true needs")
    ap.add_argument("--schedules", action="store_true",
                    help="add what schedule.<name>.* keys need")
    ap.add_argument("--only", type=int, action="append",
                    help="only entry N (1-based; repeatable)")
    ap.add_argument("--except", dest="skip", type=int, action="append",
                    help="all entries but N (1-based; repeatable)")
    a = ap.parse_args()
    acls = swarmq_acls(a.prefix, a.group, a.exactly_once, a.workflows,
                       a.schedules)
    chosen = [x for i, x in enumerate(acls, 1)
              if (not a.only or i in a.only) and
              (not a.skip or i not in a.skip)]
    if a.command == "count":
        print(len(acls))
        return 0
    if a.command == "list":
        for i, x in enumerate(chosen, 1):
            print(f"{acls.index(x) + 1}\t{describe(x)}")
        return 0
    if a.command == "table":
        print("| principal | operation | resource | what for |")
        print("|---|---|---|---|")
        for principal, op, rtype, name, pattern, why in chosen:
            kind = rtype.lower().replace("_", " ")
            star = " (prefix)" if pattern == "PREFIXED" else ""
            print(f"| `{principal}` | {op.capitalize()} | {kind} "
                  f"`{name}`{star} | {why} |")
        return 0
    if not a.admin:
        ap.error(f"{a.command} needs --admin FILE")
    admin = admin_client(a.admin)
    if a.command == "topics":
        # swarmq's topics, created as the super user (the swarmq principal
        # has no Create: its start-up check logs and carries on).
        from confluent_kafka.admin import NewTopic
        names = topic_names(a.prefix)
        compact = {"cleanup.policy": "compact"}
        new = [NewTopic(names[k], a.partitions) for k in names
               if k not in ("workflows", "schedules")]
        if a.workflows:
            new.append(NewTopic(names["workflows"], a.partitions,
                                config=compact))
        if a.schedules:  # one partition: one owner fires them
            new.append(NewTopic(names["schedules"], 1, config=compact))
        return 1 if wait_all(admin.create_topics(new, request_timeout=30),
                             "cannot create topic") else 0
    if a.command == "grant":
        futs = admin.create_acls(bindings(chosen), request_timeout=30)
    else:
        futs = admin.delete_acls(bindings(chosen, match=True),
                                 request_timeout=30)
    bad = wait_all(futs, f"cannot {a.command}")
    for x in chosen:
        print(f"acls.py: {a.command}: {describe(x)}", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
