# Dataset snapshots, model versions, training and evaluation arrive with the retraining issue;
# this app exists now so the layout shows where they go.
