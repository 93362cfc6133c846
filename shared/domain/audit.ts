/** The audit trail: who did what to whom, for every admin action that changes money or models. */

export type AuditAction = 'credits.grant' | 'prediction.refund' | 'model.create' | 'model.update';

export interface AuditEntry {
  id: string;
  at: string;
  actorId: string;
  action: AuditAction;
  target: { type: 'user' | 'prediction' | 'model'; id: string };
  details: Record<string, unknown>;
}
