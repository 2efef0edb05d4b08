/**
 * An S3 endpoint on a local port for the pipeline's s3:// tests: the handler answers each request
 * (path style: /bucket/key); the client talks to it with test credentials and one attempt, so a
 * failure shows at once instead of after the SDK's retries.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { S3Client } from "@aws-sdk/client-s3";

export interface FakeS3 {
  client: S3Client;
  close(): Promise<void>;
}

export async function fakeS3(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<FakeS3> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  const client = new S3Client({
    endpoint: `http://127.0.0.1:${port}`,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: { accessKeyId: "test", secretAccessKey: "test" },
    maxAttempts: 1,
  });
  return {
    client,
    close: async () => {
      client.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
