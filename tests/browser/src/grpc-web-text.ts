// grpc-web-text for connect-web.
//
// connect-web speaks gRPC-web in binary (`application/grpc-web+proto`) or
// JSON (`useBinaryFormat: false` means `application/grpc-web+json`, which
// tonic-web does not accept); it has no grpc-web-text. grpc-web-text is the
// same framing base64-encoded, the format of XMLHttpRequest-based clients
// (Google's grpc-web in `mode=grpcwebtext`). This `fetch` wrapper turns the
// binary transport into a grpc-web-text one: it base64-encodes the request
// body, asks for a text response with `Accept`, and decodes the response
// stream chunk by chunk, so server streaming still arrives message by
// message.

/** Wraps `inner` so that connect-web's binary gRPC-web calls travel as grpc-web-text. */
export function grpcWebTextFetch(inner: typeof fetch): typeof fetch {
  return async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const body = init?.body;
    if (!(body instanceof Uint8Array)) {
      throw new TypeError("grpc-web-text: expected connect-web to send a binary request body");
    }
    const headers = new Headers(init?.headers);
    headers.set("content-type", "application/grpc-web-text");
    headers.set("accept", "application/grpc-web-text");
    const response = await inner(input, { ...init, headers, body: base64Encode(body) });
    const contentType = response.headers.get("content-type") ?? "";
    if (response.body === null || !contentType.startsWith("application/grpc-web-text")) {
      // Not a text response (an HTTP error, say): let connect-web report it.
      return response;
    }
    const decodedHeaders = new Headers(response.headers);
    decodedHeaders.set("content-type", "application/grpc-web+proto");
    return new Response(response.body.pipeThrough(base64DecodeStream()), {
      status: response.status,
      statusText: response.statusText,
      headers: decodedHeaders,
    });
  };
}

function base64Encode(bytes: Uint8Array): string {
  let binary = "";
  for (const byte of bytes) {
    binary += String.fromCharCode(byte);
  }
  return btoa(binary);
}

// A grpc-web-text response is a concatenation of base64 strings, one per
// frame written by the server, each padded on its own: "AAAAAAU...=gAAAA...".
// Every piece is a multiple of 4 characters long, so decoding each complete
// 4-character group in order is correct; a group split across network
// chunks waits for the rest.
function base64DecodeStream(): TransformStream<Uint8Array, Uint8Array> {
  const text = new TextDecoder("ascii");
  let pending = "";
  return new TransformStream({
    transform(chunk, controller) {
      pending += text.decode(chunk, { stream: true }).replace(/\s+/g, "");
      const complete = pending.length - (pending.length % 4);
      if (complete > 0) {
        controller.enqueue(decodeGroups(pending.slice(0, complete)));
        pending = pending.slice(complete);
      }
    },
    flush(controller) {
      pending += text.decode().replace(/\s+/g, "");
      if (pending.length > 0) {
        controller.error(new Error(`grpc-web-text: ${pending.length} stray base64 characters at the end`));
      }
    },
  });
}

function decodeGroups(base64: string): Uint8Array {
  // Split after every padding run: "QQ==QUI=QUJD" -> "QQ==", "QUI=", "QUJD".
  const pieces = base64.match(/[^=]*=*/g) ?? [];
  const bytes: number[] = [];
  for (const piece of pieces) {
    if (piece.length === 0) continue;
    const binary = atob(piece);
    for (let i = 0; i < binary.length; i++) {
      bytes.push(binary.charCodeAt(i));
    }
  }
  return new Uint8Array(bytes);
}
