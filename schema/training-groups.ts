import { z } from 'zod';
import { InUseError, NameTakenError, NotFoundError } from '../server/errors.js';
import {
  createTrainingGroup,
  deleteTrainingGroup,
  findTrainingGroup,
  listTrainingGroups,
  renameTrainingGroup,
  type TrainingGroup,
} from '../server/settings/training-groups.js';
import { builder } from './builder.js';

import { inputErrors } from './errors.js';
import { isUuid, localId } from './ids.js';
import { singleLineText } from './validation.js';

const groupName = singleLineText('The name', 1000).pipe(
  z
    .string()
    .trim()
    .min(1, 'The name must not be empty.')
    .max(100, 'The name must be at most 100 characters.'),
);

export const TrainingGroupRef = builder.objectRef<TrainingGroup>('TrainingGroup');

builder.node(TrainingGroupRef, {
  description: 'A training group users are assigned to, by distribution rules or by hand.',
  id: { resolve: (group) => group.id },
  loadOne: async (id, ctx) =>
    isUuid(id) ? ((await findTrainingGroup(ctx.db, ctx.auth.companyId, id)) ?? null) : null,
  fields: (t) => ({
    name: t.exposeString('name', {
      description: 'The group name, unique in the company ignoring case.',
    }),
    createdAt: t.expose('createdAt', { type: 'DateTime', description: 'When it was created.' }),
  }),
});

builder.queryFields((t) => ({
  trainingGroups: t.field({
    type: [TrainingGroupRef],
    description: 'The training groups of the company, by name.',
    resolve: (_root, _args, ctx) => listTrainingGroups(ctx.db, ctx.auth.companyId),
  }),
}));

builder.mutationFields((t) => ({
  createTrainingGroup: t.fieldWithInput({
    type: TrainingGroupRef,
    description: 'Adds a training group.',
    typeOptions: { description: 'The name of the new training group.' },
    errors: { types: [NameTakenError, ...inputErrors] },
    input: {
      name: t.input.string({ required: true, description: 'The group name.', validate: groupName }),
    },
    resolve: (_root, { input }, ctx) => createTrainingGroup(ctx.db, ctx.auth.companyId, input.name),
  }),
  renameTrainingGroup: t.fieldWithInput({
    type: TrainingGroupRef,
    description: 'Renames a training group.',
    typeOptions: { description: 'Which group to rename, and its new name.' },
    errors: { types: [NotFoundError, NameTakenError, ...inputErrors] },
    input: {
      id: t.input.id({ required: true, description: 'The group to rename.' }),
      name: t.input.string({ required: true, description: 'The new name.', validate: groupName }),
    },
    resolve: (_root, { input }, ctx) =>
      renameTrainingGroup(
        ctx.db,
        ctx.auth.companyId,
        localId(input.id, 'TrainingGroup', 'training group'),
        input.name,
      ),
  }),
  deleteTrainingGroup: t.fieldWithInput({
    type: TrainingGroupRef,
    description:
      'Deletes a training group; its users are left without a group. Refused while a distribution rule assigns it.',
    typeOptions: { description: 'Which group to delete.' },
    errors: { types: [NotFoundError, InUseError] },
    input: { id: t.input.id({ required: true, description: 'The group to delete.' }) },
    resolve: (_root, { input }, ctx) =>
      deleteTrainingGroup(
        ctx.db,
        ctx.auth.companyId,
        localId(input.id, 'TrainingGroup', 'training group'),
      ),
  }),
}));
