import type { CommandBody, CommandName } from './api-client.ts';
import type { MemberStatus, ServiceStatus } from './types.ts';

/** What an operator can ask for from the console; `drain` is a member-wide pause that the page then follows. */
export type ActionKind = 'pause' | 'drain' | 'resume' | 'start' | 'stop' | 'startup';

export interface ActionTarget {
  member: MemberStatus;
  /** One service, or every service of the member. */
  service?: ServiceStatus;
}

export interface ActionRequest {
  kind: ActionKind;
  target: ActionTarget;
}

export const verbs: Record<ActionKind, string> = {
  pause: 'Pause',
  drain: 'Drain',
  resume: 'Resume',
  start: 'Start',
  stop: 'Stop',
  startup: 'Set startup type of',
};

/** `m1/alpha`, or `m1` for the whole member. */
export function targetLabel(target: ActionTarget): string {
  return target.service ? `${target.member.id}/${target.service.id}` : target.member.id;
}

function services(target: ActionTarget): ServiceStatus[] {
  return target.service ? [target.service] : target.member.services;
}

const canPause = (s: ServiceStatus) => s.intent === 'running';
const canResume = (s: ServiceStatus) =>
  s.startup !== 'disabled' && (s.intent === 'paused' || s.state === 'stopping');
const canStart = (s: ServiceStatus) =>
  s.startup !== 'disabled' && s.intent === 'stopped' && s.state === 'stopped';
const canStop = (s: ServiceStatus) => s.state !== 'stopped' || s.intent !== 'stopped';

/** Whether the action would change anything, and why not when it would not. */
export function availability(kind: ActionKind, target: ActionTarget): { enabled: boolean; why: string } {
  const list = services(target);
  const some = (test: (s: ServiceStatus) => boolean, why: string) =>
    list.some(test) ? { enabled: true, why: '' } : { enabled: false, why };
  switch (kind) {
    case 'pause':
      return some(canPause, 'nothing is running');
    case 'drain':
      return target.member.readyForOffline
        ? { enabled: false, why: 'already ready for offline' }
        : { enabled: true, why: '' };
    case 'resume':
      return some(canResume, 'nothing is paused');
    case 'start':
      return list.some((s) => s.intent === 'stopped' && s.startup === 'disabled') && !list.some(canStart)
        ? { enabled: false, why: 'startup type is disabled' }
        : some(canStart, 'nothing is stopped');
    case 'stop':
      return some(canStop, 'already stopped');
    case 'startup':
      return { enabled: target.service !== undefined, why: 'choose a service' };
  }
}

/** The command a confirmed dialog sends. */
/** The API route of an action: a drain has its own, so the audit log says `drain` (operator audit #28). */
export function commandFor(kind: ActionKind): CommandName {
  return kind;
}

export interface DialogFields {
  reason: string;
  deadline: string;
  graceful: boolean;
  force: boolean;
  startup: string;
}

export function requestBody(request: ActionRequest, fields: DialogFields): CommandBody {
  const { kind, target } = request;
  const body: CommandBody = {};
  if (target.service && kind !== 'drain') body.service = target.service.id;
  if (fields.reason.trim()) body.reason = fields.reason.trim();
  if (kind === 'startup') body.startup = fields.startup;
  if (kind === 'stop') body.graceful = fields.graceful;
  if (
    (kind === 'pause' || kind === 'drain' || (kind === 'stop' && fields.graceful)) &&
    fields.deadline.trim()
  )
    body.deadline = fields.deadline.trim();
  if ((kind === 'pause' || kind === 'drain' || kind === 'stop') && fields.force) body.force = true;
  return body;
}

/** What the dialog says the action will do, in the words of SPEC §2. */
export function explanation(request: ActionRequest, fields: DialogFields): string[] {
  const { kind, target } = request;
  const names = services(target).map((s) => s.id);
  const scope = target.service
    ? `service ${target.service.id} on ${target.member.id}`
    : `every service of ${target.member.id} (${names.join(', ')})`;
  switch (kind) {
    case 'pause':
      return [
        `Pauses ${scope}. New sessions are refused as soon as the command returns and go to the other members; sessions in progress go on until they end.`,
      ];
    case 'drain':
      return [
        `Pauses ${scope} and follows the drain here until ${target.member.id} is ready for offline.`,
        'New sessions go to the other members; sessions in progress go on until they end.',
      ];
    case 'resume':
      return [`Resumes ${scope}: it accepts new sessions again.`];
    case 'start':
      return [`Starts ${scope} if stopped.`];
    case 'stop':
      return fields.graceful
        ? [
            `Stops ${scope} gracefully: new sessions are refused, and it stops once the sessions in progress have ended.`,
          ]
        : [`Stops ${scope} now. Every session in progress is ended and counted as forced.`];
    case 'startup':
      return [
        `Sets the startup type of ${scope}: automatic starts with its agent, manual stays stopped until someone starts it, disabled cannot be started.`,
      ];
  }
}

/** Sessions the action would leave to end by themselves, or end at once. */
export function sessionsAt(target: ActionTarget): number {
  return services(target).reduce((sum, s) => sum + s.sessions, 0);
}
