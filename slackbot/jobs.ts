/**
 * The Slack bot's own BullMQ queue: the Events API endpoint acknowledges Slack at once and leaves the
 * work here; the bot worker resolves the asker, asks the query worker and posts the answer.
 */
import { Queue, type ConnectionOptions } from 'bullmq';
import { z } from 'zod';

/** The BullMQ queue Slack work waits in. */
export const SLACK_QUEUE = 'astry-slack';

/** action_id of the "send me the full answer privately" button. */
export const PRIVATE_ANSWER_ACTION = 'astry_private_answer';

const Ts = z.string().regex(/^\d+\.\d+$/);

/** A question someone asked: an app_mention in a conversation, or a message in their DM with the bot. */
export const QuestionJobSchema = z.object({
  kind: z.literal('question'),
  eventId: z.string().min(1),
  teamId: z.string().min(1),
  channelId: z.string().min(1),
  /** 'im': the asker's DM with the bot; 'channel': any conversation with other people in it. */
  channelType: z.enum(['im', 'channel']),
  userId: z.string().min(1),
  /** As typed, mention included. */
  text: z.string(),
  ts: Ts,
  threadTs: Ts.optional(),
  /** Date.now() when the endpoint accepted the event. */
  receivedAt: z.number(),
});
export type QuestionJob = z.infer<typeof QuestionJobSchema>;

/** A click on "send me the full answer privately". */
export const PrivateAnswerJobSchema = z.object({
  kind: z.literal('private_answer'),
  offerId: z.string().min(1),
  teamId: z.string().min(1),
  userId: z.string().min(1),
  /** Where the button was shown, for telling the user when the offer has expired. */
  channelId: z.string().min(1),
  threadTs: Ts.optional(),
  receivedAt: z.number(),
});
export type PrivateAnswerJob = z.infer<typeof PrivateAnswerJobSchema>;

export const SlackJobSchema = z.discriminatedUnion('kind', [QuestionJobSchema, PrivateAnswerJobSchema]);
export type SlackJob = z.infer<typeof SlackJobSchema>;

/** Producer side of the Slack queue. */
export class SlackJobs {
  readonly #queue: Queue<SlackJob>;

  constructor(connection: ConnectionOptions, name = SLACK_QUEUE) {
    this.#queue = new Queue<SlackJob>(name, { connection });
  }

  /**
   * Enqueues `job` under `jobId`. A job id already in the queue is not added twice (BullMQ keeps ids of
   * finished jobs for an hour): a second line of defence behind the endpoint's event-id dedupe.
   */
  async add(job: SlackJob, jobId: string): Promise<void> {
    // Answering spends money and posts to Slack: never retried automatically.
    await this.#queue.add(job.kind, job, { jobId, attempts: 1, removeOnComplete: { age: 3600 }, removeOnFail: { age: 24 * 3600 } });
  }

  async close(): Promise<void> {
    await this.#queue.close();
  }
}
