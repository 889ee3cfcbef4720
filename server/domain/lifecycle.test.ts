import { describe, expect, it } from 'vitest';
import { NODE_STATES, type NodeState } from '../contract/lifecycle.ts';
import { canTransition, transition, TransitionError, type LifecycleEvent } from './lifecycle.ts';

const node = (state: NodeState, extra: Partial<{ heldFrom: NodeState | null; rebuildAttempts: number }> = {}) => ({ state, heldFrom: null, rebuildAttempts: 0, ...extra });

describe('lifecycle transition', () => {
  const allowed: [string, NodeState, LifecycleEvent, NodeState][] = [
    ['a discovered node registers', 'discovered', { type: 'inspect' }, 'inspecting'],
    ['inspection passes', 'inspecting', { type: 'inspected' }, 'ready'],
    ['inspection finds old firmware', 'inspecting', { type: 'firmware-required' }, 'firmware-updating'],
    ['firmware updated and re-inspected', 'firmware-updating', { type: 'inspect' }, 'inspecting'],
    ['the agent fetches its profile', 'ready', { type: 'provision' }, 'provisioning'],
    ['the compute OS reports in', 'provisioning', { type: 'installed' }, 'active'],
    ['an active node fails', 'active', { type: 'fail', reason: 'heartbeats stopped' }, 'failed'],
    ['a failed node is rebuilt', 'failed', { type: 'rebuild', reason: 'auto' }, 'rebuilding'],
    ['a failed node heartbeats again', 'failed', { type: 'recover', reason: 'heartbeat' }, 'active'],
    ['a rebuilding node boots stage-1', 'rebuilding', { type: 'inspect' }, 'inspecting'],
    ['a rebuilding node is quarantined', 'rebuilding', { type: 'quarantine', reason: 'too many attempts' }, 'quarantined'],
    ['an active node reboots under us', 'active', { type: 'inspect' }, 'inspecting'],
    ['a person retries a quarantined node', 'quarantined', { type: 'rebuild', reason: 'fixed the cable' }, 'rebuilding'],
    ['any state may be retired', 'quarantined', { type: 'retire' }, 'retired'],
  ];
  it.each(allowed)('%s: %s → %s', (_name, from, event, to) => {
    expect(transition(node(from), event).state).toBe(to);
  });

  const refused: [string, NodeState, LifecycleEvent][] = [
    ['discovered cannot become active', 'discovered', { type: 'installed' }],
    ['ready cannot be installed without provisioning', 'ready', { type: 'installed' }],
    ['a quarantined node does not boot into inspection by itself', 'quarantined', { type: 'inspect' }],
    ['maintenance nodes do not get provisioned', 'maintenance', { type: 'provision' }],
    ['retired is final', 'retired', { type: 'maintenance-on' }],
    ['retired cannot be retired again', 'retired', { type: 'retire' }],
    ['maintenance-off outside maintenance', 'active', { type: 'maintenance-off' }],
    ['discovered cannot fail', 'discovered', { type: 'fail', reason: 'x' }],
    ['a rebuilding node does not recover from its old boot', 'rebuilding', { type: 'recover', reason: 'x' }],
    ['only failed nodes recover', 'active', { type: 'recover', reason: 'x' }],
  ];
  it.each(refused)('%s', (_name, from, event) => {
    expect(() => transition(node(from), event)).toThrow(TransitionError);
    try {
      transition(node(from), event);
    } catch (e) {
      // the message names the current state so a 409 tells the operator where the node is
      expect((e as Error).message).toContain(from);
    }
  });

  it('maintenance remembers and restores the previous state', () => {
    const held = transition(node('active'), { type: 'maintenance-on', reason: 'swap DIMM' });
    expect(held).toMatchObject({ state: 'maintenance', heldFrom: 'active', reason: 'swap DIMM' });
    expect(transition(held, { type: 'maintenance-off' })).toMatchObject({ state: 'active', heldFrom: null });
  });

  it('counts rebuild attempts and resets them when the node is active again', () => {
    let n = transition(node('failed'), { type: 'rebuild', reason: 'auto' });
    expect(n.rebuildAttempts).toBe(1);
    n = transition({ ...n, state: 'failed' }, { type: 'rebuild', reason: 'auto' });
    expect(n.rebuildAttempts).toBe(2);
    n = transition({ ...n, state: 'provisioning' }, { type: 'installed' });
    expect(n.rebuildAttempts).toBe(0);
    n = transition({ ...n, state: 'failed', rebuildAttempts: 2 }, { type: 'recover', reason: 'heartbeat' });
    expect(n.rebuildAttempts).toBe(0);
  });

  it('every state has at least one way out except retired', () => {
    const events = ['inspect', 'firmware-required', 'inspected', 'provision', 'installed', 'fail', 'rebuild', 'quarantine', 'maintenance-on', 'maintenance-off', 'retire'] as const;
    for (const s of NODE_STATES) {
      const outs = events.filter((e) => e !== 'retire' && canTransition(s, e));
      if (s === 'retired') expect(outs).toEqual([]);
      else expect(outs.length, s).toBeGreaterThan(0);
    }
  });
});
