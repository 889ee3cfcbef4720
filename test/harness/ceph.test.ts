// The Ceph harness itself: a working S3 endpoint on loopback, and nothing left behind after stop().
import { describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { S3Client, CreateBucketCommand, PutObjectCommand, GetObjectCommand } from '@aws-sdk/client-s3';
import { startCeph } from './ceph.ts';

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('test/harness/ceph.ts', () => {
  it('starts mon+osd+radosgw on 127.0.0.1 with an S3 user, and stop() ends every daemon and removes the dir', async () => {
    const ceph = await startCeph();
    const pids = ceph.pids();
    try {
      expect(pids).toHaveLength(3);
      expect(ceph.endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      const s3 = new S3Client({ endpoint: ceph.endpoint, region: ceph.region, forcePathStyle: true, credentials: { accessKeyId: ceph.accessKeyId, secretAccessKey: ceph.secretAccessKey }, requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' });
      await s3.send(new CreateBucketCommand({ Bucket: 'harness' }));
      await s3.send(new PutObjectCommand({ Bucket: 'harness', Key: 'k', Body: 'hello rgw' }));
      const got = await s3.send(new GetObjectCommand({ Bucket: 'harness', Key: 'k' }));
      expect(await got.Body!.transformToString()).toBe('hello rgw');
    } finally {
      await ceph.stop();
    }
    expect(pids.filter(alive)).toEqual([]);
    expect(existsSync(ceph.dir)).toBe(false);
  });
});
