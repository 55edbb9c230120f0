export const ROLES = ['Admin', 'Developer', 'Operator', 'Viewer'] as const;
export type Role = (typeof ROLES)[number];

export const isRole = (value: unknown): value is Role => (ROLES as readonly unknown[]).includes(value);

export type UserEvent =
  | {
      readonly type: 'UserRegistered';
      readonly data: {
        readonly userId: string;
        readonly username: string;
        readonly role: Role;
        readonly passwordHash: string;
      };
    }
  | { readonly type: 'UserRoleChanged'; readonly data: { readonly username: string; readonly role: Role } }
  | {
      readonly type: 'UserPasswordChanged';
      readonly data: { readonly username: string; readonly passwordHash: string };
    }
  | { readonly type: 'UserDisabled'; readonly data: { readonly username: string } };

export type UserEventType = UserEvent['type'];

export const USER_EVENT_SCHEMA_VERSIONS: Readonly<Record<UserEventType, number>> = {
  UserRegistered: 1,
  UserRoleChanged: 1,
  UserPasswordChanged: 1,
  UserDisabled: 1,
};

/** Fields of event data that hold secrets: never shown in responses, logs or audit output. */
export const SECRET_FIELDS: readonly string[] = ['passwordHash'];

export const USER_STREAM_PREFIX = 'user-';
export const userStreamId = (username: string): string => `${USER_STREAM_PREFIX}${username.toLowerCase()}`;
