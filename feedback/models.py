# Prediction log, product feedback, review routing and drift arrive with the serving and feedback
# issue; this app exists now so the layout shows where they go.
