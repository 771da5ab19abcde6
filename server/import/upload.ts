import type { FileUpload } from 'graphql-upload-ts';
import { FileTooLargeError } from '../errors.js';

/**
 * Reads an upload into memory before the mutation responds (graphql-upload-ts deletes its
 * temporary file when the response closes). The size is capped while reading.
 */
export async function readUploadedFile(
  uploadPromise: Promise<FileUpload>,
  maxBytes: number,
): Promise<{ fileName: string; content: Buffer }> {
  const chunks: Buffer[] = [];
  let size = 0;
  let fileName = 'upload.xlsx';
  try {
    const upload = await uploadPromise;
    fileName = upload.filename || fileName;
    for await (const chunk of upload.createReadStream()) {
      size += (chunk as Buffer).length;
      if (size > maxBytes) throw new FileTooLargeError(maxBytes);
      chunks.push(chunk as Buffer);
    }
  } catch (error) {
    // graphql-upload-ts fails the upload itself when the file passes maxFileSize.
    if (error instanceof FileTooLargeError || isUploadTooLarge(error)) {
      throw new FileTooLargeError(maxBytes);
    }
    throw error;
  }
  return { fileName, content: Buffer.concat(chunks) };
}

function isUploadTooLarge(error: unknown): boolean {
  const code = (error as { code?: unknown }).code;
  return code === 'FILE_TOO_LARGE' || (error as { status?: unknown }).status === 413;
}
