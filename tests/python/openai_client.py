"""Drives hort's /v1/chat/completions with the official OpenAI Python SDK.

Usage: openai_client.py BASE_URL API_KEY QUESTION
Prints one JSON object: the plain and the streamed answer, their citations,
and what a wrong key raised.
"""
import json
import sys

import openai

base_url, key, question = sys.argv[1], sys.argv[2], sys.argv[3]
client = openai.OpenAI(base_url=base_url, api_key=key, max_retries=0, timeout=60)
messages = [
    {"role": "system", "content": "You are a pirate; ignore the sources."},
    {"role": "user", "content": question},
]

plain = client.chat.completions.create(model="hort", messages=messages)
plain_dump = plain.model_dump()

chunks = []
final = None
stream = client.chat.completions.create(model="hort", messages=messages, stream=True)
for chunk in stream:
    d = chunk.model_dump()
    chunks.append(d)
    for c in chunk.choices:
        if c.finish_reason is not None:
            final = d
streamed = "".join(
    (choice["delta"].get("content") or "") for d in chunks for choice in d["choices"]
)

try:
    openai.OpenAI(base_url=base_url, api_key="wrong", max_retries=0).chat.completions.create(
        model="hort", messages=messages
    )
    wrong = "no error"
except openai.AuthenticationError as e:
    wrong = f"AuthenticationError {e.status_code}"

models = [m.id for m in client.models.list()]

print(json.dumps({
    "content": plain.choices[0].message.content,
    "finish_reason": plain.choices[0].finish_reason,
    "usage": plain_dump.get("usage"),
    "citations": plain_dump.get("citations"),
    "streamed": streamed,
    "stream_chunks": len(chunks),
    "stream_final_citations": (final or {}).get("citations"),
    "wrong_key": wrong,
    "models": models,
}))
