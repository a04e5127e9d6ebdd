"""Drives hort's MCP server with the official MCP Python SDK.

Usage:
  mcp_client.py stdio HORT CONFIG PRINCIPAL SCENARIO SIGNAL_DIR
  mcp_client.py http  URL API_KEY            SCENARIO SIGNAL_DIR

Scenarios (each prints one JSON object on stdout):
  read     list tools, search, ask, list and read resources, try a write tool
  approval call ingest_document, write the approval id to SIGNAL_DIR/approval,
           then repeat the same call until it stops being pending
  loop     call search in a loop, writing the count to SIGNAL_DIR/count, until
           the server refuses (the kill switch)
"""
import asyncio
import json
import os
import sys
import time

from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.shared.exceptions import MCPError


def dump(result):
    return {
        "is_error": bool(result.is_error),
        "text": "".join(getattr(c, "text", "") for c in result.content),
        "structured": result.structured_content,
    }


async def read(client):
    tools = sorted(t.name for t in (await client.list_tools()).tools)
    search = dump(await client.call_tool("search", {"query": "Who approves travel above 500 EUR?", "k": 3}))
    ask = dump(await client.call_tool("ask", {"question": "Who approves travel above 500 EUR?"}))
    first = search["structured"]["hits"][0]
    passage = dump(await client.call_tool(
        "get_document", {"doc": first["doc"], "page": first["page"] or 1,
                         "start": first["start"], "end": first["end"]}))
    resources = [r.uri for r in (await client.list_resources()).resources]
    read = await client.read_resource(resources[0])
    try:
        await client.call_tool("delete_document", {"path": "x.md"})
        write = "allowed"
    except MCPError as e:
        write = f"{e.error.code}: {e.error.message}"
    return {"tools": tools, "search": search, "ask": ask, "passage": passage,
            "resources": resources, "read_chars": len(read.contents[0].text), "write": write,
            "protocol": client.protocol_version}


async def approval(client, signal):
    args = {"path": "agent/notes.md", "content": "The zeppelin hangar opens at dawn.",
            "teams": ["staff"], "classification": "internal"}
    first = dump(await client.call_tool("ingest_document", args))
    aid = first["structured"]["approval_id"]
    with open(os.path.join(signal, "approval.tmp"), "w") as f:
        f.write(aid)
    os.rename(os.path.join(signal, "approval.tmp"), os.path.join(signal, "approval"))
    polls = 0
    deadline = time.time() + 120
    while True:
        polls += 1
        r = dump(await client.call_tool("ingest_document", args))
        if (r["structured"] or {}).get("status") != "pending_approval" or time.time() > deadline:
            break
        await asyncio.sleep(0.3)
    found = dump(await client.call_tool("search", {"query": "zeppelin hangar dawn", "k": 3}))
    again = dump(await client.call_tool("ingest_document", args))
    return {"first": first, "after": r, "polls": polls, "found": found,
            "again": again["structured"]}


async def loop(client, signal):
    n = 0
    error = None
    for _ in range(100000):
        try:
            await client.call_tool("search", {"query": "travel policy", "k": 1})
        except MCPError as e:
            error = {"code": e.error.code, "message": e.error.message}
            break
        n += 1
        with open(os.path.join(signal, "count.tmp"), "w") as f:
            f.write(str(n))
        os.rename(os.path.join(signal, "count.tmp"), os.path.join(signal, "count"))
    try:
        await client.call_tool("search", {"query": "travel policy", "k": 1})
        after = "allowed"
    except MCPError as e:
        after = e.error.code
    return {"calls": n, "error": error, "after": after}


async def main():
    mode = sys.argv[1]
    if mode == "stdio":
        hort, config, principal, scenario, signal = sys.argv[2:7]
        server = StdioServerParameters(command=hort, args=["--config", config, "mcp", "--as", principal],
                                       env=dict(os.environ))
    else:
        url, key, scenario, signal = sys.argv[2:6]
        import httpx2  # the SDK's own HTTP client
        from mcp.client.streamable_http import streamable_http_client
        http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=120)
        server = streamable_http_client(url, http_client=http)
    async with Client(server, read_timeout_seconds=120) as client:
        if scenario == "read":
            out = await read(client)
        elif scenario == "approval":
            out = await approval(client, signal)
        else:
            out = await loop(client, signal)
    print(json.dumps(out))


asyncio.run(main())
