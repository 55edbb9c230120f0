# Loaded by .ci/fuzz (SCHEMATHESIS_HOOKS=fuzz_hooks): the application/zip body of publishing a version,
# which schemathesis has no generator for. Small real packages (a Node24 one, a Python311 one, one without
# a handler file) and arbitrary bytes.
import io
import zipfile

import schemathesis
from hypothesis import strategies as st


def _zip(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


PACKAGES = [
    _zip({"index.js": "exports.handler = async () => ({ statusCode: 200 });\n"}),
    _zip({"handler.py": "def handler(event, context):\n    return {'statusCode': 200}\n"}),
    _zip({"main.js": "exports.handler = 1;\n"}),
]

schemathesis.openapi.media_type("application/zip", st.one_of(st.sampled_from(PACKAGES), st.binary(max_size=4096)))
